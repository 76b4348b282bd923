"""Reading the prompt: what the LLM has read stays read, the end-of-turn probability comes from the same
pass as the reply's prompt, and a reply starts from the cache without reading its prompt again."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.models


def prompts(engines, text: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    from voiceos.think.conversation import Conversation

    conv = Conversation(engines.persona, engines.llm.fmt, engines.llm.count_tokens, 1100)
    return conv.prompt(text), conv.prompt(text.rstrip(" ."), final=False)


def test_end_probability_read_on_the_way_matches_asking_separately(engines) -> None:  # type: ignore[no-untyped-def]
    llm = engines.llm
    for text in ("Sunday is the best part of the week.", "And so my fellow Americans."):
        prompt, words = prompts(engines, text)
        alone = llm.prefill(words, probe=words).end_probability
        llm.reset()
        together = llm.prefill(prompt, probe=words)
        assert together.end_probability == pytest.approx(alone, abs=0.03), text
        assert together.read == len(llm.tokenize(prompt)), "a reset cache reads the whole prompt"


def test_the_llm_tells_a_question_cut_after_a_preposition_from_a_whole_one(engines) -> None:  # type: ignore[no-untyped-def]
    from voiceos.listen.turn_end_rules import DANGLING_QUESTION_END_P

    llm = engines.llm

    def end_p(text: str) -> float:
        _prompt, words = prompts(engines, text)
        llm.reset()
        return llm.prefill(words, probe=words).end_probability

    for cut in ("Could you tell me more about", "Did you get a chance to look at"):
        assert end_p(cut) < DANGLING_QUESTION_END_P, cut
    for whole in ("What are you up to", "Who are you waiting for", "Which house do you live in"):
        assert end_p(whole) > DANGLING_QUESTION_END_P * 10, whole


def test_words_read_while_the_user_talks_are_not_read_again(engines) -> None:  # type: ignore[no-untyped-def]
    from voiceos.llm.model import GenerationStats

    llm = engines.llm
    prompt, _ = prompts(engines, "I walked along the river this morning.")
    partial, _ = prompts(engines, "I walked along the")  # a partial transcript, as read during speech
    llm.reset()
    llm.prefill(partial.removesuffix(llm.fmt.reply_open))
    stats = GenerationStats()
    reply = "".join(llm.stream(prompt, stats=stats, max_tokens=12))
    tail = len(llm.tokenize(prompt)) - len(llm.tokenize(partial.removesuffix(llm.fmt.reply_open)))
    assert stats.read_tokens == tail, "only the words after the partial and the reply template are read"
    assert reply.strip()


def test_a_reply_after_a_full_read_starts_from_the_cache(engines) -> None:  # type: ignore[no-untyped-def]
    from voiceos.llm.model import GenerationStats

    llm = engines.llm
    prompt, words = prompts(engines, "Tell me about the sea.")
    llm.prefill(prompt, probe=words)
    stats = GenerationStats()
    first = next(iter(llm.stream(prompt, stats=stats, max_tokens=4)))
    assert first and stats.read_tokens == 0, "the whole prompt was already read, logits included"
    # the same prompt again after a reply was generated: its logits are gone, one token is read again
    stats = GenerationStats()
    "".join(llm.stream(prompt, stats=stats, max_tokens=4))
    assert stats.read_tokens == 1


def test_words_reread_with_new_punctuation_keep_the_spelling_already_read(engines) -> None:  # type: ignore[no-untyped-def]
    """Whisper writes the same audio differently from pass to pass ("and so my fellow americans ask not what"
    while the user talks, "And so, my fellow Americans, ask not what your country can do for you." at the
    end). The final prompt keeps the spelling already read where the words agree, so only the new words and
    the reply template are read at the end."""
    from voiceos.think.prompt_fitting import steady_words

    llm = engines.llm
    partial_words = ["and", "so", "my", "fellow", "americans", "ask", "not"]  # the partial pass heard "… not what"
    final = "And so, my fellow Americans, ask not what your country can do for you."
    steady = " ".join(steady_words(partial_words, final.split()))
    assert steady == "and so my fellow americans ask not what your country can do for you."
    read_during_speech = prompts(engines, " ".join(partial_words))[0].removesuffix(llm.fmt.reply_open)
    reads = {}
    for label, text in (("as Whisper wrote it", final), ("steady", steady)):
        llm.reset()
        llm.prefill(read_during_speech)
        prompt, words = prompts(engines, text)
        reads[label] = llm.prefill(prompt, probe=words).read
    new_words_and_template = len(llm.tokenize(prompts(engines, steady)[0])) - len(llm.tokenize(read_during_speech))
    assert reads["steady"] <= new_words_and_template + 1
    assert reads["as Whisper wrote it"] >= new_words_and_template + 8, "re-cased words are read again"


def test_steady_words_keep_the_earlier_spelling_only_where_the_words_agree() -> None:
    from voiceos.think.prompt_fitting import steady_words

    def steady(read: str, heard: str) -> str:
        return " ".join(steady_words(read.split(), heard.split()))

    heard = "And so, my fellow Americans, ask not what your country can do for you."
    assert steady("and so my fellow americans ask not", heard) == \
        "and so my fellow americans ask not what your country can do for you."
    assert steady("", heard) == heard
    assert steady("I walked", "You walked home.") == "You walked home."
    assert steady("The child almost hurt.", "The child almost hurt the small dog.") == \
        "The child almost hurt the small dog.", "the last agreeing word takes its new spelling"


def test_a_reply_does_not_copy_an_earlier_one_word_for_word(engines) -> None:  # type: ignore[no-untyped-def]
    """Qwen, asked about nature after three turns answered the same way, writes that answer a fourth time;
    with the earlier sentences to avoid it says something of its own, and the reply guard lets it through."""
    import re

    from voiceos.think.conversation import Conversation
    from voiceos.think.guard import repeats_earlier

    llm = engines.llm
    conv = Conversation(engines.persona, llm.fmt, llm.count_tokens, 1100)
    same = "I'm glad you're enjoying this. It's always nice to hear about the beauty and fun in nature."
    for user in ("I went for a walk today.", "The sky was so blue.", "I love the sound of rain."):
        conv.add(user, same)
    prompt = conv.prompt("The flowers are blooming.")
    earlier = [e.reply for e in conv.exchanges]
    plain = "".join(llm.stream(prompt, max_tokens=30))
    assert repeats_earlier(plain, earlier, whole=False), f"the model no longer copies here: {plain!r}"
    avoid = [s for reply in earlier for s in re.split(r"(?<=[.!?])\s+", reply)]
    reply = "".join(llm.stream(prompt, max_tokens=30, avoid=avoid))
    assert reply.strip() and not repeats_earlier(reply, earlier, whole=True), reply


def test_the_phrase_blocker_keeps_boilerplate_from_being_written(engines) -> None:  # type: ignore[no-untyped-def]
    """Greeted, Qwen calls itself a computer program and offers to assist; kept from the guard's phrases
    token by token (the reply guard's last attempt), it says something the guard lets through."""
    from voiceos.think.conversation import Conversation

    llm, persona = engines.llm, engines.persona
    prompt = Conversation(persona, llm.fmt, llm.count_tokens, 1100).prompt("Hello.")
    plain = "".join(llm.stream(prompt, max_tokens=40))
    assert persona.breaks_character(plain), f"the model no longer breaks character here: {plain!r}"
    barred = "".join(llm.stream(prompt, max_tokens=40, banned=persona.banned))
    assert barred.strip() and not persona.breaks_character(barred), barred


_READER = '''
import os, sys, threading
from pathlib import Path
from voiceos import registry
from voiceos.measure.calibration import load_or_measure
from voiceos.config import Config
from voiceos.llm.engine import LocalLlm, in_passing_thread

def sleeps() -> int:
    total = 0
    for tid in os.listdir("/proc/self/task"):
        for line in open(f"/proc/self/task/{tid}/status"):
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total

def sleeps_per_read(llm: LocalLlm) -> float:
    counts = []
    def reads() -> None:
        for i in range(4):
            llm.prefill("The persona and the history. " * 20)
            before = sleeps()
            llm.prefill("The persona and the history. " * 20 + f"The child almost hurt the small dog {i}.")
            counts.append(sleeps() - before)
    worker = threading.Thread(target=reads)  # the responder: a thread that reads for the whole session
    worker.start()
    worker.join()
    return sorted(counts)[1]

llm = LocalLlm(registry.resolve(None, "llm").path, Config().llm)
load_or_measure(llm, recalibrate=True, cache_path=Path(sys.argv[1]))  # calibration, as on a first run
in_passing_thread(lambda: llm.prefill("The persona and the history."))  # the session's first read
print(sleeps_per_read(llm))
llm.prefill("The persona and the history.")  # llama.cpp work on this long-lived thread itself
print(sleeps_per_read(llm))
'''


def test_llama_work_off_the_reader_thread_leaves_its_threads_spinning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """libgomp keeps an OpenMP pool for every live thread that ran llama.cpp; with more pooled threads than
    cores its barriers stop spinning and a read sleeps hundreds of times, its two threads stacked on one core.
    Calibration and the session's first read run on a passing thread, so the responder's reads never sleep."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _READER, str(tmp_path / "calibration.json")], capture_output=True,
                         text=True, timeout=300, check=True).stdout.split()
    clean, after_main_thread = float(out[-2]), float(out[-1])
    assert clean < 20, f"a read slept {clean} times"
    assert after_main_thread > 3 * max(clean, 10)  # the trap this avoids is real
