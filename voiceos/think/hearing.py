"""The thinking worker's ears: a turn's audio to text, building on words kept at an earlier pause."""

from __future__ import annotations

from voiceos.config import SAMPLE_RATE
from voiceos.listen.transcript import SpeechRecognizer, Transcript
from voiceos.think.jobs import HearingJob, ReplyJob

# Words kept from an earlier pause (`heard_text`) are used only for a turn longer than this: a shorter one is
# heard again whole, since a pass over a short stretch alone mishears more (espeak's slow
# "samantha … do … you" is "Some answer to you" on its own, right in the whole sentence).
WHOLE_PASS_MAX_S = 10.0


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
        good at an earlier pause (as `heard_text`) and the turn is long, only the rest is."""
        if not job.heard_samples or len(job.audio) <= WHOLE_PASS_MAX_S * SAMPLE_RATE:
            return self.stt.transcribe(job.audio, word_timestamps=False, cancelled=job.cancelled)
        rest = self.stt.transcribe(job.audio[job.heard_samples :], word_timestamps=False, cancelled=job.cancelled)
        return Transcript(f"{job.heard_text} {rest.text}".strip(), [], len(job.audio) / SAMPLE_RATE, rest.stt_ms,
                          rest.window_frames, confidence=rest.confidence,
                          earlier_s=job.heard_samples / SAMPLE_RATE)

    def add_word_times(self, job: ReplyJob, *, even_if_cancelled: bool = False) -> None:
        """The turn's words with their timestamps: the words the reply was written for, aligned to the audio.
        Skipped for a cancelled job (its turn goes on, or was dropped) unless `even_if_cancelled`."""
        transcript = job.transcript
        if transcript is None or transcript.words or transcript.is_empty or (job.cancelled() and not even_if_cancelled):
            return
        transcript.words = self.stt.align(job.audio, transcript.text)
