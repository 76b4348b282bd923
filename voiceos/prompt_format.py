"""How a conversation becomes a prompt for a given model: its chat template, or a plain transcript.

Instruction models with a ChatML template (Qwen) get ChatML; Gemma instruction models get Gemma turns;
a base model (no template) gets a transcript ("Friend: …\\nSamantha: …") which base models continue well.
The prompt is rendered whole each time; llama.cpp reuses the longest prefix already evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromptFormat:
    name: str
    stops: tuple[str, ...]  # text that ends a reply

    def render(self, system: str, turns: list[tuple[str, str]], user: str, *, close_user: bool) -> str:
        """`turns` are earlier (user, reply) pairs; `user` is the new turn, left open while it is partial."""
        if self.name == "chatml":
            out = [f"<|im_start|>system\n{system}<|im_end|>\n"]
            for u, a in turns:
                out.append(f"<|im_start|>user\n{u}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n")
            out.append(f"<|im_start|>user\n{user}")
            if close_user:
                out.append("<|im_end|>\n<|im_start|>assistant\n")
            return "".join(out)
        if self.name == "gemma":
            out = [f"<start_of_turn>user\n{system}<end_of_turn>\n<start_of_turn>model\nOkay.<end_of_turn>\n"]
            for u, a in turns:
                out.append(f"<start_of_turn>user\n{u}<end_of_turn>\n<start_of_turn>model\n{a}<end_of_turn>\n")
            out.append(f"<start_of_turn>user\n{user}")
            if close_user:
                out.append("<end_of_turn>\n<start_of_turn>model\n")
            return "".join(out)
        # transcript, for base models
        out = [f"{system}\n\nWhat follows is a spoken conversation between Samantha and her friend.\n\n"]
        for u, a in turns:
            out.append(f"Friend: {u}\nSamantha: {a}\n")
        out.append(f"Friend: {user}")
        if close_user:
            out.append("\nSamantha:")
        return "".join(out)


CHATML = PromptFormat("chatml", ("<|im_end|>", "<|im_start|>", "<|endoftext|>"))
GEMMA = PromptFormat("gemma", ("<end_of_turn>", "<start_of_turn>"))
TRANSCRIPT = PromptFormat("transcript", ("\n", "Friend:"))


def format_for(metadata: dict[str, str]) -> PromptFormat:
    """Pick the prompt format from the GGUF metadata."""
    template = metadata.get("tokenizer.chat_template", "")
    name = (metadata.get("general.name", "") + " " + metadata.get("general.finetune", "")).lower()
    if "<|im_start|>" in template:
        return CHATML
    if "<start_of_turn>" in template and any(k in name for k in ("-it", " it", "instruct", "chat")):
        return GEMMA
    return TRANSCRIPT
