"""The language model: the llama.cpp engine or an OpenAI-compatible server behind the `LanguageModel` interface,
prompt formats, sampling steps."""
