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
    system: str  # the opening, with {system}
    user_open: str  # before the user's words
    reply_open: str  # after the user's words, before the reply
    reply_close: str  # after a reply
    stops: tuple[str, ...]  # text that ends a reply
    reply_lead: str = ""  # between `reply_open` and an earlier reply (the space a model writes itself)
    # What the model should keep in mind for the newest user turn (what it knows about the user), with {note}:
    # a message of its own before that turn where the format has one, else at the start of the user's words.
    note_message: str = ""
    note_in_turn: str = "({note}) "

    def render(self, system: str, turns: list[tuple[str, str]], user: str, *, close_user: bool,
               note: str = "") -> str:
        """`turns` are earlier (user, reply) pairs; `user` is the new turn, left open while it is partial;
        `note`: what the model should keep in mind for it."""
        out = [self.system.format(system=system)]
        for u, a in turns:
            out.append(f"{self.user_open}{u}{self.reply_open}{self.reply_lead}{a}{self.reply_close}")
        if note and self.note_message:
            out.append(self.note_message.format(note=note))
        in_turn = self.note_in_turn.format(note=note) if note and not self.note_message else ""
        out.append(f"{self.user_open}{in_turn}{user}")
        if close_user:
            out.append(self.reply_open)
        return "".join(out)


CHATML = PromptFormat(
    "chatml", "<|im_start|>system\n{system}<|im_end|>\n", "<|im_start|>user\n",
    "<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n", ("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
    note_message="<|im_start|>system\n{note}<|im_end|>\n")
GEMMA = PromptFormat(
    "gemma", "<start_of_turn>user\n{system}<end_of_turn>\n<start_of_turn>model\nOkay.<end_of_turn>\n",
    "<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n", "<end_of_turn>\n",
    ("<end_of_turn>", "<start_of_turn>"))
TRANSCRIPT = PromptFormat(
    "transcript", "{system}\n\nWhat follows is a spoken conversation between Samantha and her friend.\n\n",
    "Friend: ", "\nSamantha:", "\n", ("\n", "Friend:"), reply_lead=" ")


FORMATS = {fmt.name: fmt for fmt in (CHATML, GEMMA, TRANSCRIPT)}


def format_for(metadata: dict[str, str]) -> PromptFormat:
    """Pick the prompt format from the GGUF metadata."""
    template = metadata.get("tokenizer.chat_template", "")
    name = (metadata.get("general.name", "") + " " + metadata.get("general.finetune", "")).lower()
    if "<|im_start|>" in template:
        return CHATML
    if "<start_of_turn>" in template and any(k in name for k in ("-it", " it", "instruct", "chat")):
        return GEMMA
    return TRANSCRIPT
