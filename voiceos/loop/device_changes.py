"""Devices that go away during a chat: say so in one line, log it, and follow the new default or stop.

Two ways to notice: the PulseAudio server reports that one of our streams moved or ended
(`audio.device_watch`), or a stream stops delivering (the microphone stalls, the speaker's stream dies).
`--on-device-loss follow` (the default) keeps the conversation going on whatever device the system now
offers, reopening a stream that ended; `stop` ends the session with a `DeviceError`. When the speaker
goes, her reply in flight is cut either way (`cut_by: device_lost`), as phones pause when headphones are
pulled: the rest of a sentence should not start over on a device the user did not choose. Her voice
reaching the input she listens on is always said out loud.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from voiceos.audio.device_watch import DEVICE_NAMES, DeviceMoved, DeviceWatch, Stream
from voiceos.audio.interfaces import AudioChunk
from voiceos.audio.microphone import MicrophoneSource
from voiceos.audio.speaker import Speaker
from voiceos.config import OnDeviceLoss
from voiceos.errors import DeviceError
from voiceos.measure.session_log import SessionLog

log = logging.getLogger(__name__)

MAX_REOPENS = 5  # a device that keeps failing is not followed forever


FEEDBACK_WARNING = ("her voice now reaches the input she listens on ({output} → {input}): she may hear herself; "
                    "choose other devices with --output-device/--input-device or PULSE_SINK/PULSE_SOURCE")


class DeviceChanges:
    """The live streams of a chat, watched; the voice loop calls `read` for audio and `check` each step."""

    def __init__(self, policy: OnDeviceLoss, source: MicrophoneSource, speaker: Speaker, session_log: SessionLog,
                 notify: Callable[[str], None], watch: DeviceWatch | None = None) -> None:
        self.policy = policy
        self.source = source
        self.speaker = speaker
        self.log = session_log
        self.notify = notify
        self.watch = watch
        self.reopens = 0
        self._end_expected: set[Stream] = set()  # streams reopened here whose end the server may still report
        self._looked = False

    def read(self, timeout: float) -> AudioChunk | None:
        """The microphone's next block; a stalled microphone is reopened (follow) or ends the session."""
        try:
            return self.source.read(timeout)
        except DeviceError as exc:
            self._lost("input", str(exc))
            return None

    def check(self, cut_reply: Callable[[], None]) -> None:
        """Apply what the server reported and revive a dead speaker stream; `cut_reply` stops her reply."""
        if not self._looked and self.watch is not None:  # the first look, once both streams are open
            self._looked = True
            self.watch.expect_new_stream()
            self._warn_if_feeding_back()
        for moved in self.watch.events() if self.watch is not None else []:
            self._moved(moved, cut_reply)
        if not self.speaker.alive():
            cut_reply()
            self._lost("output", "the output device stopped (unplugged?)")

    def _moved(self, moved: DeviceMoved, cut_reply: Callable[[], None]) -> None:
        if moved.after is None and moved.stream in self._end_expected:
            self._end_expected.discard(moved.stream)
            return  # the dead stream was noticed first and is open again (that was logged and said)
        if moved.after is None and (now := self._now_on(moved.stream)) is not None:
            moved = DeviceMoved(moved.stream, moved.before, now, moved.feeds_back)  # gone a moment, then moved
        self.log.write("device_change", stream=moved.stream, before=moved.before, after=moved.after,
                       feeds_back=moved.feeds_back, policy=self.policy.value)
        if moved.stream == "output":
            cut_reply()
        if self.policy is OnDeviceLoss.STOP:
            raise DeviceError(f"{moved.describe()}; stopping (--on-device-loss stop)")
        if moved.after is None:  # the server ended the stream: open a new one
            self._lost(moved.stream, moved.describe())
            return
        self._say(f"{moved.describe()}; following it")
        self._warn_if_feeding_back()

    def _now_on(self, stream: Stream) -> str | None:
        """Where the server has `stream` now (None: nowhere, or no server to ask)."""
        if self.watch is None:
            return None
        self.watch.expect_new_stream(stream)
        return self.watch.routes.of(stream) if self.watch.routes is not None else None

    def _lost(self, stream: Stream, why: str) -> None:
        """A stream that ended: reopened (follow) or the end of the session (stop, or nothing to open)."""
        if self.policy is OnDeviceLoss.STOP or self.reopens >= MAX_REOPENS:
            raise DeviceError(why if self.policy is OnDeviceLoss.STOP else f"{why}; gave up after "
                              f"{self.reopens} reopened streams")
        self.reopens += 1
        self._end_expected.add(stream)
        self._forget_vanished_choice(stream)
        try:
            self.source.reopen() if stream == "input" else self.speaker.reopen()
        except DeviceError as exc:  # nothing to follow: the session ends
            raise DeviceError(f"{why}; no other {DEVICE_NAMES[stream]} to follow ({exc})") from exc
        now = None
        if self.watch is not None:
            self.watch.expect_new_stream(stream)
            now = self.watch.routes.of(stream) if self.watch.routes else None
        self.log.write("device_change", stream=stream, before=None, after=now, reopened=True,
                       policy=self.policy.value, why=why)
        self._say(f"{why}; now on {now}" if now else f"{why}; reopened it")
        self._warn_if_feeding_back()

    def _forget_vanished_choice(self, stream: Stream) -> None:
        """PULSE_SOURCE/PULSE_SINK naming a device that is gone would make the new stream fail: the default
        is followed instead. A device that still exists (a stall, not an unplug) stays chosen."""
        variable = "PULSE_SOURCE" if stream == "input" else "PULSE_SINK"
        named = os.environ.get(variable)
        if named and self.watch is not None and not self.watch.still_there(stream, named):
            del os.environ[variable]
            log.info("%s=%s is gone: the new stream goes to the default device", variable, named)

    def _warn_if_feeding_back(self) -> None:
        routes = self.watch.routes if self.watch is not None else None
        if routes is not None and routes.feeds_back:
            self.log.write("device_feedback", output=routes.output, input=routes.input)
            self._say(FEEDBACK_WARNING.format(output=routes.output, input=routes.input))

    def _say(self, message: str) -> None:
        log.info("%s", message)
        self.notify(message)

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()
