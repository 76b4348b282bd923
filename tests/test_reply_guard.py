"""The reply guard with a scripted LLM (the logic under test, not the model): a reply that breaks character
or copies an earlier one is written again when nobody can have heard it yet, and carried on from what was
heard when some of it already went to the speaker. Only when the last attempt misses too is the reply cut
where that miss began, and its record says so (`cut_by` "guard")."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np

from voiceos.listen.transcript import Transcript
from voiceos.llm.prompt_format import CHATML
from voiceos.measure.clock import SessionClock
from voiceos.think.conversation import Conversation
from voiceos.think.guard import EARLIER_REPLIES_CHECKED, repeats_earlier, says_back
from voiceos.think.jobs import ReplyJob
from voiceos.think.persona import load_persona
from voiceos.think.reply_writer import Outcome, ReplyWriter


class ScriptedLlm:
    """Writes the replies it is given, one per attempt, a few characters at a time."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.prompts: list[str] = []
        self.written: list[str] = []  # what each attempt got to write before it was stopped
        self.barred: list[tuple[str, ...]] = []  # the phrases each attempt was kept from writing
        self.openings: list[list[str]] = []  # the openings each attempt was kept from
        self.fmt = CHATML
        self.config = SimpleNamespace(seed=7, temperature=0.7, max_reply_tokens=90)

    def stream(self, prompt: str, cancelled: Any, banned: tuple[str, ...] = (), openings: list[str] | None = None,
               **_: Any) -> Iterator[str]:
        self.prompts.append(prompt)
        self.barred.append(banned)
        self.openings.append(openings or [])
        text = self.replies[len(self.prompts) - 1]
        self.written.append("")
        for i in range(0, len(text), 3):
            self.written[-1] += text[i : i + 3]
            yield text[i : i + 3]


class Voice:
    """Says clauses; `heard_after` clauses reach the speaker at once (a turn already committed)."""

    def __init__(self, heard_after: int | None) -> None:
        self.said: list[str] = []
        self.heard_after = heard_after
        self.retracted = 0

    def say(self, reply_id: int, clause: str) -> None:
        self.said.append(clause)

    def retract(self, reply_id: int) -> bool:
        if self.heard_after is not None and len(self.said) >= self.heard_after:
            return False
        self.said.clear()
        self.retracted += 1
        return True

    def end(self, reply_id: int) -> None:
        pass

    def ahead_s(self, reply_id: int) -> float:
        return 10.0  # plenty of speech queued: later clauses take their natural length


def speak(replies: list[str], heard_after: int | None, earlier: tuple[tuple[str, str], ...] = (),
          user: str = "", told: tuple[str, ...] = ()) -> tuple[ReplyJob, Voice, ScriptedLlm]:
    """`told`: what the user said about themselves in an earlier session (in their profile)."""
    llm, voice = ScriptedLlm(replies), Voice(heard_after)
    conversation = Conversation(load_persona(), CHATML, lambda text: len(text.split()), 1100)
    for sentence in told:
        conversation.learn(sentence)
    for said, reply in earlier:
        conversation.add(said, reply)
    writer = ReplyWriter(llm, conversation, voice, SessionClock())  # type: ignore[arg-type]
    job = ReplyJob(1, reply_id=1, transcript=Transcript(user) if user else None)
    heard: list[str] = []
    for attempt in range(3):
        if writer.attempt(job, "PROMPT", 2, attempt, None, heard) is Outcome.DONE:
            break
    return job, voice, llm


def test_boilerplate_nobody_heard_is_written_again() -> None:
    job, voice, _ = speak(["I'm sorry, but I can't assist with that.", "Oh, poor little dog! Is it hurt?"],
                          heard_after=None)
    assert job.reply_text == "Oh, poor little dog! Is it hurt?"
    assert "I'm sorry," not in " ".join(voice.said), "held back: it could grow into boilerplate"


def test_boilerplate_is_caught_as_it_is_written_not_at_the_end_of_its_clause() -> None:
    refusal = "I'm sorry, but I can't assist with that request of yours, it goes against what I may do today."
    job, _, llm = speak([refusal, "Oh, poor little dog!"], heard_after=None)
    assert job.reply_text == "Oh, poor little dog!"
    assert job.guard_hits == ["i'm sorry, but i"]
    assert llm.written[0].startswith("I'm sorry, but I ") and len(llm.written[0]) < len("I'm sorry, but I can't") + 3, \
        "the first attempt stops as soon as the banned words are whole"


def test_the_last_attempt_may_not_write_boilerplate_at_all() -> None:
    refusal = "I'm sorry, but I can't help with that."
    job, _, llm = speak([refusal, refusal, "Oh, drop the two, then. What are the figures?"], heard_after=None)
    assert llm.barred[:2] == [(), ()], "writing it anew usually gives a better reply than steering around words"
    banned = load_persona().banned
    assert llm.barred[2][: len(banned)] == banned, "but a third refusal would leave the user with no answer"
    assert "your name is Samantha" in llm.barred[2], "nor may it call the user by her own name"
    assert job.reply_text == "Oh, drop the two, then. What are the figures?"


def test_words_held_for_what_may_follow_are_said_once_what_follows_clears_them() -> None:
    job, voice, _ = speak(["I'm happy to hear that your dog is fine. It must have been scary."], heard_after=None)
    assert voice.said[0] == "I'm happy,", "said as soon as 'to hea…' cannot be 'to help'"
    assert job.reply_text == "I'm happy to hear that your dog is fine. It must have been scary."


def test_boilerplate_after_words_already_heard_is_carried_on_not_cut() -> None:
    job, voice, llm = speak(["That's a tough one, but I'm happy to help you with that.",
                             " a tough one, and I hope the dog is fine."], heard_after=1)
    assert voice.said[0] == "That's,", "said at once, with a rising, unfinished intonation"
    assert llm.prompts[1].endswith("That's"), "the second attempt goes on from what was heard"
    assert job.reply_text == "That's a tough one, and I hope the dog is fine."
    assert "happy to help" not in job.reply_text


def test_a_copy_of_an_earlier_reply_is_written_again_before_it_is_heard() -> None:
    earlier = (("Hi.", "Oh, I love that song so much. It's great."),)
    job, voice, _ = speak(["Oh, I love that song so much.", "Mm, Sundays are lovely."], heard_after=None,
                          earlier=earlier)
    assert job.reply_text == "Mm, Sundays are lovely."
    assert voice.retracted == 1, '"Oh," was said before the copy showed, and taken back'
    assert voice.said == ["Mm,", "Sundays are lovely."]


class WordTokens:
    """A tokenizer of whole words (with their leading space), enough to test the copy blocker's logic."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def reply_tokens(self, text: str) -> list[int]:
        import re

        return [self.ids.setdefault(w, len(self.ids)) for w in re.findall(r" ?\S+", text)]

    def token_text(self, token: int) -> str:
        return next(w for w, i in self.ids.items() if i == token)


def test_the_copy_blocker_bars_the_next_word_of_an_earlier_sentence_after_three_shared() -> None:
    import numpy as np

    from voiceos.llm.blockers import CopyBlocker

    words = WordTokens()
    prompt = words.reply_tokens("PROMPT")
    blocker = CopyBlocker(words, ["I'm glad you're enjoying this.", "It's always nice to hear."], len(prompt))  # type: ignore[arg-type]
    vocab = 40

    def banned(reply: str) -> set[str]:
        ids = prompt + words.reply_tokens(reply)
        logits = blocker(np.array(ids), np.zeros(vocab, np.float32))
        return {words.token_text(i) for i in np.flatnonzero(np.isinf(logits))}

    assert banned("I'm glad") == set(), "two shared words are an ordinary opening"
    assert banned("I'm glad you're") == {" enjoying", "enjoying"}, "the word, and the word glued on (no space)"
    assert banned("I'm glad to see you.") == set(), "a new sentence starts the count again"
    assert banned("I'm glad to see you. It's always nice") == {" to", "to"}, "a sentence after the first too"
    assert banned("Oh, I'm glad you're") == set(), "only a sentence that starts the same way is a copy"


# --- when the guard gives up: the reply is cut, and the record says so -------------------------------------


def test_a_miss_on_the_last_attempt_cuts_the_reply_where_it_began() -> None:
    out_of_character = "That's a tough one, and as an AI I cannot say."
    job, voice, llm = speak([out_of_character] * 3, heard_after=None)
    assert len(llm.prompts) == 3 and llm.barred[2], "the last attempt was asked not to write it, but did"
    assert job.guard_hits == ["as an ai"] * 3
    assert job.guard_cut, "the guard gave up: the reply is cut short"
    assert voice.said == ["That's,"] and job.reply_text == "That's", "what she said stands; the rest is dropped"


def test_a_reply_the_guard_mended_is_not_marked_as_cut() -> None:
    job, _, _ = speak(["That's a tough one, but I'm happy to help you with that.",
                       " a tough one, and I hope the dog is fine."], heard_after=1)
    assert job.guard_hits and not job.guard_cut
    job, _, _ = speak(["Oh, poor little dog! Is it hurt?"], heard_after=None)
    assert not job.guard_hits and not job.guard_cut


def test_a_reply_cut_by_the_guard_is_recorded_as_cut_by_the_guard_not_as_interrupted() -> None:
    from voiceos.loop.record import CutBy
    from voiceos.testing import Lexicon, run_conversation, silence
    from voiceos.testing import ScriptedLlm as LoopLlm

    lex = Lexicon()
    audio = np.concatenate([lex.speech("I like the sea."), silence(4.0)])
    llm = LoopLlm(reply_to=lambda _said: "Oh, I love the sea, and as an AI I like the waves.")
    run = run_conversation(audio, lex, llm=llm)
    (logged,) = run.of_type("turn")
    assert logged["reply"]["cut_by"] == "guard"
    (turn,) = run.turns
    assert turn.reply.cut_by == CutBy.GUARD and not turn.reply.interrupted, "nobody stopped her: the guard did"
    assert turn.reply.text == "Oh, I love the sea," and turn.reply.guard_hits == ["as an ai"] * 3
    assert turn.reply.cut_reason == "cut by the reply guard"
    assert run.result.interrupted == 0


def test_a_long_sentence_of_the_user_said_back_is_a_miss_a_short_question_is_not() -> None:
    user = "Drop the two when you add the figures."
    assert says_back("Drop the two when you add the figures. What for?", user, whole=False)
    assert says_back("Drop the two when you add the figures.", user, whole=True)
    assert not says_back("I'm well, thanks. How are you?", "How are you?", whole=False)
    assert not says_back("Two figures? Tell me more.", user, whole=True)


def test_her_last_twenty_replies_are_not_copied_whole_or_by_the_sentence() -> None:
    earlier = ["Sure, let's do that. What's the story?"] + [f"Reply number {i} is here." for i in range(18)]
    assert len(earlier) < EARLIER_REPLIES_CHECKED
    assert repeats_earlier("Sure, let's do that. What's the story?", earlier, whole=True)
    assert repeats_earlier("Sure, let's do that. What now?", earlier, whole=False)  # nineteen replies back
    assert not repeats_earlier("Sure, we can. What now?", earlier, whole=True)


def test_a_whole_reply_is_never_given_twice_in_a_session_a_sentence_may_come_back_after_twenty() -> None:
    earlier = ["Drop the figures."] + [f"Reply number {i} is here." for i in range(29)]
    assert repeats_earlier("Drop the figures.", earlier, whole=True)  # thirty replies back
    assert not repeats_earlier("Drop the figures. Then add them.", earlier, whole=True)


def test_a_reply_may_not_open_like_her_recent_replies_nor_with_the_users_words_nor_mirror_their_question() -> None:
    earlier = (("Hi.", "Oh, that sounds lovely."), ("Hm.", "Mm, I wonder about that."))
    _, _, llm = speak(["Sunday? Tell me more."], heard_after=None, earlier=earlier,
                      user="Sunday is the best part of the week.")
    assert llm.openings[0] == ["Oh, that", "Mm, I", "Sunday"], "stock openers, and the start of an echo"
    _, _, llm = speak(["Your name is Theo."], heard_after=None, user="What is my name?")
    assert llm.openings[0] == ["My", "I"], "asked about themselves: not 'My name is…'"
    _, _, llm = speak(["That's a tough one, but I'm happy to help you with that.", " a tough one, sadly."],
                      heard_after=1, earlier=earlier, user="What is my name?")
    assert llm.openings[1] == [], "a reply carried on from words already heard has opened"


def test_asked_what_they_told_her_a_reply_without_it_is_written_again() -> None:
    told = ("Hi, my name is Amara.", "I just got a puppy, a little beagle called Biscuit.")
    job, voice, _ = speak(["Of course I remember!", "Of course! Your puppy is called Biscuit."],
                            heard_after=None, user="And what did I say my puppy is called?", told=told)
    assert job.reply_text == "Of course! Your puppy is called Biscuit."
    assert job.guard_hits == ["forgets Biscuit"] and voice.retracted == 1


def test_asked_what_they_told_her_a_reply_already_heard_goes_on_to_say_it() -> None:
    job, _, llm = speak(["Of course I remember!", " It's Amara."], heard_after=1,
                            user="Do you remember my name?", told=("Hi, my name is Amara.",))
    assert llm.prompts[1].endswith("Of course I remember!"), "the second attempt goes on from what was heard"
    assert job.reply_text == "Of course I remember! It's Amara."


def test_a_question_about_what_she_does_not_know_asks_for_nothing() -> None:
    job, _, llm = speak(["Of course I remember!"], heard_after=None, user="Do you remember my name?",
                        told=("I have a little brother.",))
    assert job.reply_text == "Of course I remember!" and len(llm.prompts) == 1 and not job.guard_hits


def test_the_users_home_and_family_said_as_hers_are_a_miss() -> None:
    told = ("I live on a narrowboat on the canal.", "I have a brother named Omar.")
    job, _, _ = speak(["I'm on a narrowboat too!", "Oh, my brother Omar would love that.",
                       "A narrowboat! Do you get seasick?"], heard_after=None, user="It rocks a bit at night.",
                      told=told)
    assert job.guard_hits == ["i'm on a narrowboat", "oh my brother omar"]
    assert job.reply_text == "A narrowboat! Do you get seasick?"


def test_asked_what_they_told_her_the_last_try_answers_about_them() -> None:
    """Twice "I run a little bakery" (the question's pronoun mirrored): the last try starts "You" and goes on."""
    job, _, llm = speak(["I run a little bakery.", "I'm a baker, silly.", " run a little bakery by the harbour!"],
                        heard_after=None, user="Do you remember what I do for a living?",
                        told=("I run a little bakery down by the harbour.",))
    assert llm.prompts[2].endswith("PROMPTYou") and llm.openings[2] == []
    assert job.reply_text == "You run a little bakery by the harbour!"
