"""The thinking worker's ears: a turn's audio to text, building on words kept at an earlier pause."""

from __future__ import annotations

from voiceos.config import SAMPLE_RATE
from voiceos.listen.transcript import SpeechRecognizer, Transcript, Word, normalise
from voiceos.think.jobs import HearingJob, ReplyJob

ALIGN_SLACK_WORDS = 1  # a timed pass may disagree with the first pass on this many trailing words


def align_words(text: str, words: list[Word]) -> list[Word]:
    """Words with timestamps from a second pass, kept only as far as they agree with the first."""
    wanted = normalise(text).split()
    out = []
    for w, expected in zip(words, wanted):
        if normalise(w.word) != expected:
            break
        out.append(w)
    return out if len(out) >= len(wanted) - ALIGN_SLACK_WORDS else words


class Hearing:
    def __init__(self, stt: SpeechRecognizer) -> None:
        self.stt = stt

    def turn(self, job: ReplyJob) -> Transcript:
        """A reply's words, without timestamps (they are found later, while she speaks: `add_word_times`)."""
        if job.naive:
            return self.stt.transcribe(job.audio, word_timestamps=False, full_window=True, cancelled=job.cancelled)
        return self.after_heard(job)

    def after_heard(self, job: HearingJob) -> Transcript:
        """The job's audio transcribed without timestamps; when its first `heard_samples` were transcribed for
        good at an earlier pause (as `heard_text`), only the rest is."""
        if not job.heard_samples:
            return self.stt.transcribe(job.audio, word_timestamps=False, cancelled=job.cancelled)
        rest = self.stt.transcribe(job.audio[job.heard_samples :], word_timestamps=False, cancelled=job.cancelled)
        return Transcript(f"{job.heard_text} {rest.text}".strip(), [], len(job.audio) / SAMPLE_RATE, rest.stt_ms,
                          rest.window_frames, confidence=rest.confidence,
                          earlier_s=job.heard_samples / SAMPLE_RATE)

    def add_word_times(self, job: ReplyJob) -> None:
        """The turn's words with their timestamps: a second pass over the whole audio, kept where it agrees."""
        transcript = job.transcript
        if transcript is None or transcript.words or job.cancelled():
            return
        timed = self.stt.transcribe(job.audio, word_timestamps=True, full_window=job.naive)
        transcript.words = align_words(transcript.text, timed.words)
