#!/usr/bin/env python3
"""How much silence the end-of-turn rules give a question that stops on a dangling word, against a whole
question that ends on the same kind of word.

Whisper writes "Could you tell me more about?" for a phrase cut off in a rising voice. Each phrase below is
spoken by espeak-ng, transcribed the way a live pass hears a pause (320 ms before, 200 ms of silence after),
read by the LLM for P(end) and scored by the audio end-of-turn model; the table shows the silence
`silence_needed_ms` asks for. A cut question answered after `complete_silence_ms` is a false cut-off waiting
to happen; a whole one held for a hesitation is latency lost.

The `tune` phrases set `DANGLING_QUESTION_END_P` and the word list (`_DANGLING`: "Why not?" there took "not"
out of it); the `held-out` phrases were first run with the rule as it is.

    .venv/bin/python scripts/check_dangling_questions.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceos.config import SAMPLE_RATE, Config, TtsConfig  # noqa: E402
from voiceos.listen.turn_end_rules import silence_needed_ms  # noqa: E402
from voiceos.loop.session import load_engines  # noqa: E402
from voiceos.speak.tts import SpeechSynthesizer, trim_silence  # noqa: E402
from voiceos.think.conversation import Conversation  # noqa: E402
from voiceos.think.prompt_fitting import PromptFitter  # noqa: E402

CUT = {  # unfinished: the phrase goes on after the pause
    "tune": ("Would you like to hear about", "What do you think of", "Can you remind me to", "Have you ever been to",
             "Do you know anything about", "Is it better to", "Why do people always talk about",
             "How would you feel if", "Could you help me with", "Do you ever think about", "What would you say to",
             "Are you afraid of", "Did you ever write to", "Can we talk a little about",
             "Is there anything you want to", "Would you rather listen to", "Should I be worried about",
             "Do you remember what we said about", "Can I ask you something about", "What happened to",
             "Are you still thinking of", "Is it okay to", "Where did you hear about"),
    "held-out": ("Would you mind telling me about", "Have you ever listened to", "Can you say something nice to",
                 "Do you want to go for a walk with", "What do you usually do on", "Is it hard for you to",
                 "Did you get a chance to look at", "Are you coming back from"),
}
WHOLE = {  # finished questions that end on a preposition, "not", "what" or "mean"
    "tune": ("What are you thinking about?", "Where are you from?", "Who did you go with?", "What is it like?",
             "What do you mean?", "So what?", "How about you?", "What are you up to?",
             "Which one are you talking about?", "What was it for?", "What are you afraid of?", "Who is it for?",
             "Do you want to come with?", "What is there to talk about?", "Who were you talking to?",
             "What happened to you?", "What are you looking at?", "Is that all?", "Where did you hear that?",
             "What is this about?", "Who do you work for?", "What is it made of?", "Can you come too?", "Why not?",
             "What was that about?", "Where do you come from?"),
    "held-out": ("What are you listening to?", "Who are you waiting for?", "What is she laughing at?",
                 "Is it not?", "Which house do you live in?", "What are you so worried about?",
                 "Who did you give it to?", "What is there to be afraid of?"),
}
BEFORE_S = 0.32  # the voice loop's pre-roll
AFTER_S = 0.2  # silence heard when the pause's first pass runs


def main() -> int:
    config = Config()
    engines = load_engines(config)
    synth = SpeechSynthesizer(TtsConfig(), reuse_short_clauses=False)
    fast = config.endpoint.complete_silence_ms
    summary = []
    for kind, sets in (("cut", CUT), ("whole", WHOLE)):
        for split, phrases in sets.items():
            quick = 0
            for phrase in phrases:
                voice = trim_silence(synth.synthesize(phrase).samples, lead_s=0.0, tail_s=0.0).astype(np.float32)
                audio = np.concatenate([np.zeros(int(BEFORE_S * SAMPLE_RATE), np.float32), voice,
                                        np.zeros(int(AFTER_S * SAMPLE_RATE), np.float32)])
                heard = engines.transcriber.transcribe(audio, word_timestamps=False).text
                conversation = Conversation(engines.persona, engines.llm.fmt, engines.llm.count_tokens,
                                            config.llm.history_budget_tokens)
                _prompt, open_prompt = PromptFitter(engines.llm, conversation).reply_prompts(heard)
                end_p = engines.llm.prefill(open_prompt, probe=open_prompt).end_probability
                voice_p = engines.turn_model(audio) if engines.turn_model else None
                ms = silence_needed_ms(heard, end_p, config.endpoint, voice_p)
                quick += ms <= fast
                print(f"{kind:5s} {split:8s} {phrase!r:40s} heard {heard!r:42s} P(end) {end_p or 0:.4f} "
                      f"voice {voice_p or 0:.2f} → {ms} ms", flush=True)
            summary.append(f"{kind} {split}: {quick} of {len(phrases)} answered after {fast} ms of silence")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
