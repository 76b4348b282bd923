"""The `turn` record: one per answered utterance, written by the voice loop and read back — by `voiceos
report`, the bench, the chat printer and scripts/measure_latency.py — through this one class.

The JSON fields are those of ../shared/DESIGN.md (`user`, `reply`, `timings_ms`, `pauses`) and more;
`TurnRecord.from_log` also reads the logs of older versions (missing fields take their defaults).
Times in `user` are session-clock seconds; every `*_ms` is milliseconds from the end of the user's speech.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from voiceos.listen.transcript import Word
from voiceos.measure.ledger import PauseRecord
from voiceos.measure.session_log import fields_of, from_fields


@dataclass
class UserSpeech:
    """What the user said, with word timings on the session clock."""

    text: str = ""
    words: list[Word] = field(default_factory=list)
    speech_start: float = 0.0
    speech_end: float = 0.0  # the end of the last word


class CutBy(str, Enum):
    """Why a reply ended before she had said all she wrote: `ReplyRecord.cut_by`'s values."""

    GUARD = "guard"  # the reply guard gave up on its last attempt: she stopped where the miss began
    BARGE_IN = "barge_in"  # the user talked over her
    CTRL_C = "ctrl_c"  # the session was stopped mid-reply
    DEVICE_LOST = "device_lost"  # an audio device went away (unplugged, its server gone)


@dataclass
class ReplyRecord:
    text: str = ""  # what was actually spoken (cut where she was stopped, or where the guard cut it)
    interrupted: bool = False  # stopped from outside: a barge-in, Ctrl-C, a lost device (not the guard)
    generated: str = ""  # what was written, spoken or not
    guard_hits: list[str] = field(default_factory=list)  # why attempts were written again
    reply_id: int = 0
    cut_by: str | None = None  # a `CutBy` value when the reply was cut short, None when she said it all

    @property
    def cut_reason(self) -> str | None:
        """Why she did not say all of it, in a few words for a person (None: she did)."""
        if self.cut_by is None:
            return "interrupted" if self.interrupted else None  # a log from before `cut_by`
        return CUT_REASONS.get(self.cut_by, self.cut_by)


CUT_REASONS = {  # keyed by value: a record read back from a log holds plain strings
    CutBy.GUARD.value: "cut by the reply guard",
    CutBy.BARGE_IN.value: "interrupted",
    CutBy.CTRL_C.value: "stopped with Ctrl-C",
    CutBy.DEVICE_LOST.value: "audio device lost",
}


@dataclass
class Timings:
    """The numbers of DESIGN.md, in ms from the end of speech (None when not timed: audio fed faster than
    real time, or a stage never reached)."""

    endpoint: float | None = None  # end of turn decided
    stt: float | None = None  # wall time of the turn's Whisper pass (not from speech end)
    stt_rtf: float | None = None  # that pass's real-time factor
    llm_first_token: float | None = None
    first_clause: float | None = None
    tts_first_audio: float | None = None
    voice_to_voice: float | None = None  # first reply sample handed to the output device


@dataclass
class EndpointRecord:
    end_probability: float | None = None  # the LLM's P(turn ends here)
    required_silence_ms: int | None = None  # the silence that ended the turn
    longest_inner_pause_ms: int | None = None
    voice_complete_p: float | None = None  # the audio end-of-turn model's P(complete) at the last pause


@dataclass
class LlmRecord:
    prompt_tokens: int = 0
    reused_tokens: int = 0  # found already read
    read_tokens: int = 0  # read for this reply
    generated_tokens: int = 0
    decode_tps: float = 0.0
    speculative: bool = False  # the reply was started before the turn was known to be over


@dataclass
class SttRecord:
    window_frames: int = 0  # Whisper encoder window (10 ms frames)
    audio_s: float = 0.0
    heard_earlier_s: float = 0.0  # leading audio whose words were kept from a pass at an earlier pause


@dataclass
class Trace:
    """Where the time went, in ms from the end of speech (session clock)."""

    pause_heard: float | None = None
    job_submitted: float | None = None
    job_started: float | None = None
    stt_done: float | None = None
    read_done: float | None = None
    turn_decided: float | None = None
    first_token: float | None = None
    first_clause: float | None = None
    first_audio_ready: float | None = None
    first_sample_out: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return fields_of(self)


@dataclass
class PlaybackRecord:
    gaps_ms: float = 0.0  # silence inside the reply because the next clause was late
    seconds: float = 0.0  # reply audio played
    clauses: int = 0


@dataclass
class EchoRecord:
    cancelled_frames: int = 0  # microphone frames her own voice was subtracted from
    correlation: float = 0.0  # best normalised correlation of her voice found in the microphone (0 when none)


@dataclass
class AudioRecord:
    input_overflows: int = 0
    output_underflows: int = 0


@dataclass
class MemoryRecord:
    exchanges_before: int = 0  # exchanges in the prompt when this turn was answered
    dropped_so_far: int = 0
    n_ctx: int = 0


@dataclass
class TurnRecord:
    turn: int = 0  # 1, 2, … in this conversation
    mode: str = "streaming"  # config.Mode's value
    user: UserSpeech = field(default_factory=UserSpeech)
    reply: ReplyRecord = field(default_factory=ReplyRecord)
    timings_ms: Timings = field(default_factory=Timings)
    endpoint: EndpointRecord = field(default_factory=EndpointRecord)
    llm: LlmRecord = field(default_factory=LlmRecord)
    stt: SttRecord = field(default_factory=SttRecord)
    loop_max_lag_ms: float = 0.0  # how far behind the audio the loop ran during the turn
    trace_ms: Trace = field(default_factory=Trace)
    playback: PlaybackRecord = field(default_factory=PlaybackRecord)
    pauses: PauseRecord = field(default_factory=PauseRecord)
    echo: EchoRecord = field(default_factory=EchoRecord)
    audio: AudioRecord = field(default_factory=AudioRecord)
    memory: MemoryRecord = field(default_factory=MemoryRecord)
    t: float = 0.0  # when the record was written (session clock); set by the log

    def fields(self) -> dict[str, Any]:
        """The JSON fields the log writes after `type` and `t`."""
        out = fields_of(self)
        del out["t"]
        return out

    @classmethod
    def from_log(cls, data: Mapping[str, Any]) -> TurnRecord:
        """A `turn` line of a session log, of this version or an older one."""
        return from_fields(cls, data)


def turns_of(records: Iterable[Mapping[str, Any]]) -> list[TurnRecord]:
    """The turn records among a log's records."""
    return [TurnRecord.from_log(r) for r in records if r.get("type") == "turn"]
