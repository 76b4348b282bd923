"""The live view without a terminal: the real voice loop with scripted models (voiceos.testing) announces its
events, the view's model is built from them, and the layout is rendered to text. Also the pieces around it:
the announcer never waits, the line printer prints what it printed before, keys arrive through a pty."""

from __future__ import annotations

import io
import os
import termios
import threading
import time

import numpy as np
from rich.console import Console

from voiceos.commands.printer import ConsolePrinter, lines_printed
from voiceos.listen.transcript import normalise
from voiceos.loop.announcer import Announcer, Listener
from voiceos.loop.loop_events import (
    HerState,
    InputLevel,
    LoopEvent,
    MicrophoneMuted,
    PauseMeasured,
    ReplyProgressed,
    StateChanged,
    TurnFinished,
    TurnHeard,
    WordsSoFar,
)
from voiceos.loop.record import ReplyRecord, Timings, Trace, TurnRecord, UserSpeech
from voiceos.measure.ledger import PauseRecord
from voiceos.testing import Lexicon, ScriptedLlm, run_conversation, silence
from voiceos.view.layout import render
from voiceos.view.model import ViewModel
from voiceos.view.terminal import KeyReader

LONG_REPLY = "Oh, once upon a time a little boat sailed out past the harbour lights, and the sea was calm."


def collected(announcer: Announcer) -> tuple[Listener, list[LoopEvent]]:
    events: list[LoopEvent] = []
    return announcer.add(Listener("test", events.append).start()), events


def shown(model: ViewModel, width: int = 120) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    with model.lock:
        console.print(render(model))
    return console.export_text()


def test_a_scripted_turn_announces_her_states_the_words_a_pause_and_the_record() -> None:
    lex = Lexicon()
    announcer = Announcer()
    listener, events = collected(announcer)
    audio = np.concatenate([lex.speech("I like the sea.", [0.1, 0.6, 0.2]), silence(3.0)])
    run = run_conversation(audio, lex, announcer=announcer)
    listener.close()
    states = [e.state for e in events if isinstance(e, StateChanged)]
    assert states[0] is HerState.LISTENING and states[-1] is HerState.STOPPED
    order = [HerState.HEARING, HerState.THINKING, HerState.SPEAKING, HerState.LISTENING]
    firsts = [states.index(s, 1) for s in order]
    assert firsts == sorted(firsts), states
    assert [e.text for e in events if isinstance(e, TurnHeard)] == ["I like the sea."]
    pauses = [e for e in events if isinstance(e, PauseMeasured)]
    between = [p for p in pauses if not p.ended_turn]
    assert any(abs(p.seconds - 0.6) < 0.1 for p in between), pauses  # the 600 ms pause after "like"
    assert pauses[-1].ended_turn and "drafted a reply" in pauses[-1].did
    (finished,) = [e for e in events if isinstance(e, TurnFinished)]
    assert finished.record.reply.text == run.turns[0].reply.text
    spoken = [e.spoken for e in events if isinstance(e, ReplyProgressed)]
    assert spoken[-1] == "Oh, that sounds lovely. Tell me more?" and "" in spoken[:-1]  # heard bit by bit
    assert len(spoken) == len(set(spoken))  # announced when it moved on, not every step
    assert any(isinstance(e, InputLevel) for e in events)

    model = ViewModel()
    for event in events:
        model.apply(event)
    text = shown(model)
    assert "you      › I like the sea." in text and "samantha › Oh, that sounds lovely. Tell me more?" in text
    assert "Samantha is stopped" in text
    assert f"{between[1].seconds:.2f} s" in text and "drafted a reply — your turn ended" in text
    assert "session: 1 turn(s)" in text
    for stage in ("end of turn", "speech recognised", "first token", "first audio"):
        assert stage in text
    assert f"{finished.record.timings_ms.voice_to_voice:6.0f} ms" in text


def test_words_so_far_give_way_to_the_final_words_and_a_cut_reply_says_so() -> None:
    model = ViewModel()
    for event in [StateChanged(HerState.HEARING, 1.0), WordsSoFar("ask not what"),
                  WordsSoFar("ask not what your country")]:
        model.apply(event)
    assert "ask not what your country" in shown(model)
    model.apply(StateChanged(HerState.THINKING, 3.0))
    model.apply(WordsSoFar("ask not what your country can"))
    model.apply(TurnHeard("Ask not what your country can do for you."))
    model.apply(WordsSoFar("a late guess"))  # a pass still under way when the turn ended: not shown
    model.apply(ReplyProgressed("That is a famous line. Who said it first?", "That is a famous"))
    text = shown(model)
    assert "Ask not what your country can do for you." in text and "a late guess" not in text
    assert "samantha › That is a famous line. Who said it first?" in text
    model.apply(StateChanged(HerState.HEARING, 5.0))  # talked over
    record = TurnRecord(turn=1, user=UserSpeech("Ask not what your country can do for you."),
                        reply=ReplyRecord("That is a famous", interrupted=True, cut_by="barge_in"),
                        timings_ms=Timings(endpoint=300.0, llm_first_token=350.0, voice_to_voice=420.0),
                        trace_ms=Trace(stt_done=-20.0), pauses=PauseRecord(all_pauses_s=1.5, cpu_idle_s=2.0))
    model.apply(TurnFinished(record))
    model.apply(MicrophoneMuted(True))
    text = shown(model)
    assert "samantha › That is a famous [interrupted]" in text
    assert "mic MUTED" in text and "Samantha is hearing you" in text
    model.toggle_help()
    assert "mute or unmute the microphone" in shown(model)


def test_the_printer_listening_to_the_loop_prints_what_it_always_printed() -> None:
    lex = Lexicon()
    announcer = Announcer()
    out = io.StringIO()
    audio = np.concatenate([lex.speech("I like the sea.", [0.1, 0.4, 0.2]), silence(3.0)])
    with lines_printed(announcer, ConsolePrinter(out)):
        run = run_conversation(audio, lex, announcer=announcer)
    (turn,) = run.turns
    from voiceos.measure.ledger import summary_line

    assert out.getvalue() == (
        "you      › I like the sea.\n"
        f"samantha › Oh, that sounds lovely. Tell me more?   (voice-to-voice {turn.timings_ms.voice_to_voice:.0f} ms)\n"
        f"           {summary_line(turn.pauses)}\n")


def test_announcing_never_waits_for_a_stuck_listener() -> None:
    announcer = Announcer()
    release = threading.Event()
    stuck = announcer.add(Listener("stuck", lambda _e: release.wait()).start())
    started = time.perf_counter()
    for _ in range(5000):
        announcer.announce(InputLevel(-30.0))
    assert time.perf_counter() - started < 0.5
    assert stuck.dropped > 0
    release.set()
    stuck.close()
    assert announcer.wants(ReplyProgressed)  # a listener of every kind
    announcer.remove(stuck)
    printing = announcer.add(Listener("printer", lambda _e: None, ConsolePrinter.KINDS))
    assert announcer.wants(TurnFinished) and not announcer.wants(InputLevel)  # levels are not even measured
    announcer.remove(printing)


def test_a_long_reply_is_shown_spoken_part_first() -> None:
    lex = Lexicon()
    announcer = Announcer()
    listener, events = collected(announcer)
    run_conversation(np.concatenate([lex.speech("Tell me a story."), silence(12.0)]), lex,
                     llm=ScriptedLlm(reply_to=lambda _said: LONG_REPLY), announcer=announcer)
    listener.close()
    progress = [e for e in events if isinstance(e, ReplyProgressed)]
    assert any(e.spoken and e.spoken != e.written for e in progress)  # part heard, the rest still to come
    assert progress[-1].spoken == progress[-1].written  # all of it heard in the end
    assert normalise(progress[-1].written) == normalise(LONG_REPLY)  # as said: the clauses (and their commas)


def test_keys_arrive_one_by_one_and_the_terminal_is_restored() -> None:
    main, side = os.openpty()
    before = termios.tcgetattr(side)
    keys: list[str] = []
    with os.fdopen(side, "r") as stream:
        reader = KeyReader(keys.append, stream).start()
        assert not termios.tcgetattr(side)[3] & termios.ICANON  # cbreak: no line buffering
        os.write(main, b"m?q")
        deadline = time.monotonic() + 5
        while len(keys) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        reader.close()
        assert keys == ["m", "?", "q"]
        assert termios.tcgetattr(side) == before
    os.close(main)


def test_the_view_is_drawn_again_only_when_what_it_shows_changed() -> None:
    model = ViewModel()
    model.apply(InputLevel(-30.0))
    drawn = model.version
    model.apply(InputLevel(-30.4))  # the meter moves by less than a cell: nothing to draw
    assert model.version == drawn
    model.apply(InputLevel(-12.0))
    model.apply(StateChanged(HerState.HEARING, 1.0))
    assert model.version == drawn + 2
    assert "mic " + "█" * 16 in shown(model)
