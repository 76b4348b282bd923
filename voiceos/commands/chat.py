"""`voiceos chat`: talk to Samantha through the microphone and speaker."""

from __future__ import annotations

import logging

from voiceos.audio.device_watch import DeviceWatch
from voiceos.audio.devices import check_default_device
from voiceos.audio.microphone import MicrophoneSource
from voiceos.audio.speaker import Speaker, VirtualSpeaker
from voiceos.commands.console import session_closed, status
from voiceos.commands.watching import watched
from voiceos.config import Config, OnDeviceLoss
from voiceos.errors import DeviceError
from voiceos.loop.announcer import Announcer
from voiceos.loop.device_changes import DeviceChanges
from voiceos.loop.session import Session, load_engines
from voiceos.loop.voice_loop import LoopOptions

log = logging.getLogger(__name__)


def open_speaker(session: Session, device: str | int | None, *, required: bool) -> Speaker | VirtualSpeaker:
    try:
        if device is None:
            check_default_device("output")
        return Speaker(session.clock, device).start()
    except DeviceError:
        if required:
            raise
        status("no speaker found: replies are written as WAV files only")
        return VirtualSpeaker(session.clock).start()


def chat(config: Config, *, live: bool = False) -> int:
    """`live`: the live view on the terminal (else the turns are printed as lines)."""
    if config.audio.input_device is None:
        check_default_device("input")
    engines = load_engines(config, progress=status)
    session = Session(config, engines, kind="chat")
    with session_closed(session, ctrl_c_ends=True):  # Ctrl-C is how a chat ends: a clean exit, not an error
        source = MicrophoneSource(session.clock, config.audio.input_device)
        speaker = open_speaker(session, config.audio.output_device, required=True)
        assert isinstance(speaker, Speaker)  # required=True: a real device or a DeviceError

        def toggle_mute() -> bool:
            muted = source.toggle_mute()
            session.log.write("mute", muted=muted)
            return muted

        announcer = Announcer()
        with watched(session, announcer, live=live, mute=toggle_mute) as say:
            devices = DeviceChanges(OnDeviceLoss(config.audio.on_device_loss), source, speaker, session.log,
                                    notify=say, watch=DeviceWatch.start_if_possible())
            say(f"opening the microphone… (log: {session.log.path})")
            options = LoopOptions(config.session.mode, announcer=announcer,
                                  on_ready=lambda: say("listening — talk to Samantha (Ctrl-C to end)"))
            try:
                session.converse(source, speaker, options, devices)
            finally:
                devices.close()
                speaker.close()
    return 0
