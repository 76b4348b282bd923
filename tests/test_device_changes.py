"""What chat does when devices move or streams end, and how a Ctrl-C is held and raised — the logic alone,
with stand-ins for the streams, the server and the log (tests/test_faults.py does it on real streams)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from voiceos import interrupts
from voiceos.audio.device_watch import DeviceMoved, DeviceWatch, Routes, _feeds_back
from voiceos.config import OnDeviceLoss
from voiceos.errors import DeviceError
from voiceos.loop.device_changes import MAX_REOPENS, DeviceChanges

SINKS = {0: {"name": "vmic", "monitor_source": "vmic.monitor", "properties": {}},
         1: {"name": "vrec", "monitor_source": "vrec.monitor", "properties": {}},
         2: {"name": "vspk", "monitor_source": "vspk.monitor", "properties": {"device.master_device": "vrec"}}}


def test_her_voice_feeds_back_when_the_input_monitors_her_sink_or_the_sink_under_it() -> None:
    assert _feeds_back(SINKS[0], {"name": "vmic.monitor"}, SINKS)
    assert _feeds_back(SINKS[2], {"name": "vrec.monitor"}, SINKS)  # vspk plays through vrec
    assert not _feeds_back(SINKS[2], {"name": "vmic.monitor"}, SINKS)
    assert not _feeds_back(None, {"name": "vmic.monitor"}, SINKS)


def test_a_move_is_an_event_a_stream_appearing_is_not() -> None:
    watch = DeviceWatch(pid=1)
    watch.routes = Routes(output=None, input="vmic.monitor", feeds_back=False)
    watch._note(Routes(output="vspk", input="vmic.monitor", feeds_back=False))  # the speaker opened
    assert watch.events() == []
    watch._note(Routes(output="vuser", input=None, feeds_back=False))
    assert watch.events() == [DeviceMoved("output", "vspk", "vuser", False),
                              DeviceMoved("input", "vmic.monitor", None, False)]


class FakeStream:
    def __init__(self, fail_reopen: bool = False) -> None:
        self.reopens = 0
        self.dead = False
        self.fail_reopen = fail_reopen

    def alive(self) -> bool:
        return not self.dead

    def read(self, timeout: float) -> None:
        if self.dead:
            raise DeviceError("the input device stopped: its stream ended (unplugged?)")

    def reopen(self) -> None:
        if self.fail_reopen:
            raise DeviceError("cannot open the output device (no such device)")
        self.reopens += 1
        self.dead = False


class FakeWatch:
    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.pending: list[DeviceMoved] = []

    def events(self) -> list[DeviceMoved]:
        out, self.pending = self.pending, []
        return out

    def expect_new_stream(self, stream: str | None = None) -> None:
        pass

    def still_there(self, stream: str, name: str) -> bool:
        return name != "vspk"


class FakeLog:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.records.append((kind, fields))
        return {"t": 0.0}


def changes(policy: OnDeviceLoss, routes: Routes, **speaker: bool) -> tuple[DeviceChanges, dict[str, Any]]:
    said: list[str] = []
    parts = {"source": FakeStream(), "speaker": FakeStream(**speaker), "log": FakeLog(), "said": said,
             "watch": FakeWatch(routes), "cuts": []}
    devices = DeviceChanges(policy, parts["source"], parts["speaker"], parts["log"], said.append,  # type: ignore[arg-type]
                            watch=parts["watch"])  # type: ignore[arg-type]
    return devices, parts


ROUTES = Routes(output="vspk", input="vmic.monitor", feeds_back=False)


def test_follow_a_moved_speaker_cuts_her_reply_says_so_and_goes_on() -> None:
    devices, parts = changes(OnDeviceLoss.FOLLOW, ROUTES)
    parts["watch"].pending.append(DeviceMoved("output", "vspk", "vuser", False))
    devices.check(lambda: parts["cuts"].append(1))
    assert parts["cuts"] == [1]
    assert parts["said"] == ["the speaker moved from vspk to vuser; following it"]
    assert [k for k, _ in parts["log"].records] == ["device_change"]


def test_a_moved_microphone_does_not_cut_her_and_a_feedback_route_is_warned() -> None:
    devices, parts = changes(OnDeviceLoss.FOLLOW, ROUTES)
    devices.check(lambda: None)  # the first look
    parts["watch"].routes = Routes(output="vspk", input="vrec.monitor", feeds_back=True)
    parts["watch"].pending.append(DeviceMoved("input", "vmic.monitor", "vrec.monitor", True))
    devices.check(lambda: parts["cuts"].append(1))
    assert parts["cuts"] == []
    assert parts["said"][0] == "the microphone moved from vmic.monitor to vrec.monitor; following it"
    assert parts["said"][1].startswith("her voice now reaches the input she listens on (vspk → vrec.monitor)")
    assert [k for k, _ in parts["log"].records] == ["device_change", "device_feedback"]


def test_stop_ends_the_session_with_the_move_named() -> None:
    devices, parts = changes(OnDeviceLoss.STOP, ROUTES)
    parts["watch"].pending.append(DeviceMoved("output", "vspk", "vmic", True))
    with pytest.raises(DeviceError, match=r"^the speaker moved from vspk to vmic; stopping \(--on-device-loss stop\)$"):
        devices.check(lambda: parts["cuts"].append(1))
    assert parts["cuts"] == [1]


@pytest.fixture
def pulse_sink_env() -> Iterator[None]:
    before = os.environ.get("PULSE_SINK")
    os.environ["PULSE_SINK"] = "vspk"
    yield
    if before is None:
        os.environ.pop("PULSE_SINK", None)
    else:
        os.environ["PULSE_SINK"] = before


def test_a_dead_speaker_stream_is_reopened_on_the_default_when_its_device_is_gone(pulse_sink_env: None) -> None:
    devices, parts = changes(OnDeviceLoss.FOLLOW, ROUTES)
    parts["speaker"].dead = True
    devices.check(lambda: parts["cuts"].append(1))
    assert parts["speaker"].reopens == 1 and parts["cuts"] == [1]
    assert "PULSE_SINK" not in os.environ  # vspk is gone: the default is followed
    assert parts["said"] == ["the output device stopped (unplugged?); now on vspk"]


def test_a_stream_that_cannot_be_reopened_ends_the_session_and_reopening_is_bounded() -> None:
    devices, parts = changes(OnDeviceLoss.FOLLOW, ROUTES, fail_reopen=True)
    parts["speaker"].dead = True
    with pytest.raises(DeviceError, match=r"^the output device stopped .*; no other speaker to follow"):
        devices.check(lambda: None)
    devices, parts = changes(OnDeviceLoss.FOLLOW, ROUTES)
    for _ in range(MAX_REOPENS):
        parts["source"].dead = True
        assert devices.read(0.01) is None
    parts["source"].dead = True
    with pytest.raises(DeviceError, match="gave up after 5 reopened streams"):
        devices.read(0.01)


@pytest.fixture
def sigint_handled() -> Iterator[None]:
    """voiceos's handler for the test, and the interpreter's back after it (with the module's state)."""
    before = signal.getsignal(signal.SIGINT)
    interrupts.install()
    yield
    signal.signal(signal.SIGINT, before)
    interrupts._pending.clear()
    interrupts._holding.clear()
    interrupts._received.clear()


def test_ctrl_c_in_a_deferred_block_is_raised_at_the_next_boundary(sigint_handled: None) -> None:
    with interrupts.interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)  # handled at once, in this thread: noted, not raised
        finished = True
    assert finished
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_if_interrupted()
    assert interrupts.received() == "Ctrl-C"


def test_once_held_a_second_ctrl_c_is_only_noted(sigint_handled: None) -> None:
    interrupts.hold()
    os.kill(os.getpid(), signal.SIGINT)
    interrupts.raise_if_interrupted()  # nothing raised: the session is already on its way out


def test_a_stream_gone_a_moment_and_then_moved_is_told_as_a_move() -> None:
    devices, parts = changes(OnDeviceLoss.FOLLOW, Routes(output="vspk", input="vuser.monitor", feeds_back=False))
    parts["watch"].pending.append(DeviceMoved("input", "vmic.monitor", None, False))
    devices.check(lambda: None)
    assert parts["said"] == ["the microphone moved from vmic.monitor to vuser.monitor; following it"]
    assert parts["source"].reopens == 0
