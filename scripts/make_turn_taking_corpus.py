#!/usr/bin/env python3
"""Build the turn-taking corpus that `voiceos bench --turn-taking DIR` runs.

Three kinds of utterance, each one user turn that must be answered once, after its last word:
- `cut`: a sentence stopped after an unfinished phrase, a pause of 0.3, 0.6, 0.9 or 1.2 s put in, then the
  rest of the sentence. Real recordings from ../shared/speech (cut at the gap between two words, found by a
  full-window Whisper pass with word timestamps) and sentences spoken by espeak-ng.
- `slow`: a sentence spoken by espeak-ng word by word, the words joined by silences of 120-600 ms (a slow,
  thoughtful speaker).
- `complete`: the whole sentences as they are (the latency at a true end, and the word error rate), and
  forty more everyday sentences spoken by espeak-ng at 150, 185 and 220 words a minute: on twenty sentences
  a point of word error rate is two words, too few to tell which of two passes hears better.

Every item is marked `tune` or `held-out`: the end-of-turn rules were tuned on the `tune` items only, and the
bench reports both, so a number that only holds on what it was tuned on shows.

The manifest, `turn_taking.tsv`, has one row per WAV: file, kind, split, pause_s, pause_at_s (where the
inserted pause starts, seconds into the file), reference text. `transcripts.tsv` beside it lets the plain
bench read the same folder.

    .venv/bin/python scripts/make_turn_taking_corpus.py --out turn-taking [--speech ../shared/speech]
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceos.audio.wav import read_wav, write_wav  # noqa: E402
from voiceos.commands.bench.corpus import read_transcripts  # noqa: E402
from voiceos.commands.bench.turn_taking import MANIFEST, TurnTakingItem, write_manifest  # noqa: E402
from voiceos.config import SAMPLE_RATE, Config  # noqa: E402
from voiceos.listen.transcript import Word, normalise  # noqa: E402
from voiceos.speak.tts import SpeechSynthesizer, trim_silence  # noqa: E402

PAUSES_S = (0.3, 0.6, 0.9, 1.2)
EDGE_S = 0.3  # silence before and after each utterance
HELD_OUT_RECORDINGS = {"spk1_snt4", "spk1_snt5"}

# espeak sentences cut after an unfinished phrase: (words before the pause, the rest, split)
ESPEAK_CUT = (
    ("I was thinking that maybe we could", "go to the beach tomorrow", "tune"),
    ("The thing I keep coming back to is", "how quiet the house feels at night", "tune"),
    ("My brother called me yesterday because", "his car broke down again", "held-out"),
    ("When I finally got home I noticed that", "the door was already open", "held-out"),
    ("I keep wondering whether", "we should have stayed in that little town", "held-out"),
    ("The best part of my day was when", "the rain finally stopped", "held-out"),
    ("Could you tell me more about", "the places you would like to see", "held-out"),
    ("She said she would call me after", "the meeting was over", "held-out"),
)
# espeak sentences said word by word, slowly: (text, split)
ESPEAK_SLOW = (
    ("Samantha do you ever wonder what happens in the silence between my words", "tune"),
    ("I have been trying to decide whether I should call my father tonight", "tune"),
    ("Sometimes I feel like the city is much louder than it used to be", "held-out"),
    ("Tell me what you would do if you had a whole free day", "held-out"),
    ("I am not sure what I want to do with my life right now", "held-out"),
    ("My grandmother used to sing to me when I could not sleep", "held-out"),
)
ESPEAK_COMPLETE = (
    ("Hi Samantha, my name is Theo.", "tune"),
    ("Samantha, what do you like about the ocean?", "tune"),
    ("I finished reading the book you told me about.", "held-out"),
    ("Do you think people can really change?", "held-out"),
    ("I went swimming in the lake this morning.", "held-out"),
    ("What is the most beautiful thing you have ever heard?", "held-out"),
)
# more complete sentences (none tuned on when they were added), each said at one of MORE_RATES_WPM in turn;
# marked tune and held-out alternately, so that later tuning keeps a held-out half
ESPEAK_MORE_COMPLETE = (
    "I spent the whole afternoon fixing the kitchen sink.",
    "Do you remember what we talked about last night?",
    "My sister is moving to Portland next month.",
    "I think I need a longer holiday this year.",
    "The coffee shop on the corner closed last week.",
    "Can you help me write a letter to my landlord?",
    "We watched an old movie and fell asleep on the couch.",
    "I have a job interview on Thursday morning.",
    "Why do people like horror films so much?",
    "The garden looks beautiful after the rain.",
    "My name is Daniel and I work as a nurse.",
    "I forgot my umbrella at the train station.",
    "What would you do with a million dollars?",
    "The children built a snowman in the park.",
    "I am learning to play the guitar.",
    "Our neighbors have a very loud dog.",
    "Tell me something that made you laugh today.",
    "I burned the toast again this morning.",
    "The library stays open late on Fridays.",
    "Would you rather live by the sea or in the mountains?",
    "I lost my keys somewhere in the house.",
    "My father taught me how to fish when I was young.",
    "Is it strange that I talk to you every evening?",
    "The bus was very late today.",
    "I painted the bedroom a pale shade of green.",
    "We are planning a small party for my mother.",
    "How do you decide what to say to me?",
    "The phone rang just as I stepped into the shower.",
    "I read a poem about the moon before bed.",
    "My friend Clara makes the best bread in town.",
    "I wonder if the stars look different from the ocean.",
    "The meeting ran late and I missed dinner.",
    "Please remind me to water the plants tomorrow.",
    "I found an old photograph of my grandparents.",
    "Do you ever get tired of answering questions?",
    "The wind knocked over the fence last night.",
    "I started running again after a long break.",
    "My cat sleeps on my keyboard when I work.",
    "What is your favorite sound in the whole world?",
    "I cooked pasta with lemon and garlic for dinner.",
)
MORE_RATES_WPM = (150, 185, 220)
SLOW_GAP_S = (0.12, 0.6)


@dataclass(frozen=True)
class Spoken:
    name: str
    samples: np.ndarray
    words: list[Word]  # timed, seconds into `samples`
    text: str
    split: str


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SAMPLE_RATE)), np.float32)


def spoken(synth: SpeechSynthesizer, text: str, attempts: int = 3) -> np.ndarray:
    """`text` said by espeak-ng, without its leading and trailing silence (espeak-ng through pyttsx3 now
    and then hands back an empty file: then it is asked again)."""
    for _ in range(attempts):
        samples = trim_silence(synth.synthesize(text).samples, lead_s=0.0, tail_s=0.0)
        if len(samples) >= 0.08 * SAMPLE_RATE:
            return samples
    raise SystemExit(f"espeak-ng gave no audio for {text!r} ({attempts} attempts); see `voiceos doctor`")


def cut_point(spoken: Spoken, fraction: float) -> float:
    """Seconds into the audio between two words, about `fraction` of the way through, never before the second
    word or after the second-to-last: the middle of the gap between the two words."""
    words = spoken.words
    i = min(max(1, round(fraction * len(words))), len(words) - 2)
    return (words[i - 1].end + words[i].start) / 2


def with_pause(samples: np.ndarray, at_s: float, pause_s: float) -> np.ndarray:
    at = int(at_s * SAMPLE_RATE)
    return np.concatenate([samples[:at], silence(pause_s), samples[at:]])


def recordings(speech: Path, config: Config) -> list[Spoken]:
    from voiceos import registry
    from voiceos.listen.transcriber import Transcriber

    stt = Transcriber(registry.resolve(None, "stt").path, config.stt)
    refs = read_transcripts(speech)
    out = []
    for path in sorted(speech.glob("*.wav")):
        samples, _ = read_wav(path)
        timed = stt.transcribe(samples, word_timestamps=True, full_window=True)
        ref = refs.get(path.name, timed.text)
        if len(timed.words) < 5:
            continue
        split = "held-out" if path.stem in HELD_OUT_RECORDINGS else "tune"
        out.append(Spoken(path.stem, samples, timed.words, ref, split))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write (replaced)")
    parser.add_argument("--speech", type=Path, default=ROOT.parent / "shared" / "speech")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    config = Config()
    rng = random.Random(args.seed)
    synth = SpeechSynthesizer(config.tts, reuse_short_clauses=False)
    synth_at = {rate: SpeechSynthesizer(replace(config.tts, rate_wpm=rate), reuse_short_clauses=False)
                for rate in MORE_RATES_WPM}
    items: list[tuple[TurnTakingItem, np.ndarray]] = []
    edge = silence(EDGE_S)

    def add(name: str, kind: str, split: str, audio: np.ndarray, text: str, pause_s: float = 0.0,
            pause_at_s: float = 0.0) -> None:
        item = TurnTakingItem(f"{name}.wav", kind, split, pause_s, round(pause_at_s + EDGE_S, 3), text)
        items.append((item, np.concatenate([edge, audio, edge])))

    try:
        for rec in recordings(args.speech, config):
            fractions = (0.35, 0.7) if len(rec.words) > 12 else (0.5,)
            for k, fraction in enumerate(fractions):
                at = cut_point(rec, fraction)
                for pause in PAUSES_S:
                    add(f"cut-{rec.name}-{k}-{int(pause * 1000)}ms", "cut", rec.split,
                        with_pause(rec.samples, at, pause), rec.text, pause, at)
            add(f"complete-{rec.name}", "complete", rec.split, rec.samples, rec.text)
        for n, (head, tail, split) in enumerate(ESPEAK_CUT):
            first, second = spoken(synth, head), spoken(synth, tail)
            for pause in PAUSES_S:
                audio = np.concatenate([first, silence(pause), second])
                add(f"cut-espeak{n}-{int(pause * 1000)}ms", "cut", split, audio, f"{head} {tail}", pause,
                    len(first) / SAMPLE_RATE)
            add(f"complete-espeak-cut{n}", "complete", split, np.concatenate([first, silence(0.08), second]),
                f"{head} {tail}")
        for n, (text, split) in enumerate(ESPEAK_SLOW):
            parts: list[np.ndarray] = []
            for i, word in enumerate(text.split()):
                if i:
                    parts.append(silence(rng.uniform(*SLOW_GAP_S)))
                parts.append(spoken(synth, word))
            add(f"slow-espeak{n}", "slow", split, np.concatenate(parts), text)
        for n, (text, split) in enumerate(ESPEAK_COMPLETE):
            add(f"complete-espeak{n}", "complete", split, spoken(synth, text), text)
        for n, text in enumerate(ESPEAK_MORE_COMPLETE):
            rate = MORE_RATES_WPM[n % len(MORE_RATES_WPM)]
            add(f"complete-more{n:02d}-{rate}wpm", "complete", "tune" if n % 2 == 0 else "held-out",
                spoken(synth_at[rate], text), text)
    finally:
        synth.close()
        for other in synth_at.values():
            other.close()

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.wav"):
        old.unlink()
    for item, audio in items:
        write_wav(out / item.file, audio)
    write_manifest(out / MANIFEST, [item for item, _ in items])
    (out / "transcripts.tsv").write_text("".join(f"{i.file}\t{normalise(i.text)}\n" for i, _ in items),
                                         encoding="utf-8")
    kinds = {k: sum(1 for i, _ in items if i.kind == k) for k in ("cut", "slow", "complete")}
    print(f"{len(items)} utterances in {out}: " + ", ".join(f"{n} {k}" for k, n in kinds.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
