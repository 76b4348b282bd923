"""The language model: the llama.cpp engine behind the `LanguageModel` interface, prompt formats, sampling steps."""
