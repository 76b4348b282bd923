"""A private PulseAudio daemon with virtual devices, so tests and benchmarks drive real PortAudio streams.

Sinks (16 kHz):
- `vmic`: what is played here is what voiceos hears (it records `vmic.monitor`, via PULSE_SOURCE);
- `vspk`: voiceos's speaker (PULSE_SINK), the right channel of the stereo sink `vrec`;
- `vuser`: the left channel of `vrec`;
- `vboth`: a combine sink feeding `vmic` and `vuser` at once.
Playing the user's words into `vboth` and recording `vrec.monitor` gives one stereo recording on one clock:
the user on the left, Samantha on the right — the end of speech and the start of the reply, cleanly apart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from voiceos.errors import DeviceError


class PulseRig:
    def __init__(self, workdir: Path | None = None) -> None:
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="voiceos-pulse-"))
        self.runtime = self.dir / "runtime"
        self._proc: subprocess.Popen[bytes] | None = None
        self._children: list[subprocess.Popen[bytes]] = []
        self.log_path = self.dir / "pulseaudio.log"

    def env(self, *, source: str = "vmic.monitor", sink: str = "vspk") -> dict[str, str]:
        """Environment for a PortAudio/Pulse client of this daemon."""
        env = dict(os.environ)
        env.update({"PULSE_SERVER": f"unix:{self.runtime}/native", "PULSE_RUNTIME_PATH": str(self.runtime),
                    "PULSE_SOURCE": source, "PULSE_SINK": sink})
        return env

    def pactl(self, *args: str) -> str:
        out = subprocess.run(["pactl", *args], env=self.env(), capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise DeviceError(f"pactl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def start(self) -> PulseRig:
        if not shutil.which("pulseaudio"):
            raise DeviceError("pulseaudio is not installed (./scripts/setup.sh installs it)")
        self.runtime.mkdir(parents=True, exist_ok=True)
        env = self.env()
        self._proc = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "-n",
             "--load=module-native-protocol-unix", "--log-target=stderr", "--use-pid-file=no"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log_path.open("wb"),
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DeviceError(f"pulseaudio exited at start; see {self.log_path}")
            ok = subprocess.run(["pactl", "info"], env=env, capture_output=True, timeout=5).returncode == 0
            if ok:
                break
            time.sleep(0.1)
        else:
            raise DeviceError("pulseaudio did not come up within 15 s")
        self.pactl("load-module", "module-null-sink", "sink_name=vmic", "rate=16000", "channels=1")
        self.pactl("load-module", "module-null-sink", "sink_name=vrec", "rate=16000", "channels=2")
        for name, side in (("vspk", "front-right"), ("vuser", "front-left")):
            self.pactl("load-module", "module-remap-sink", f"sink_name={name}", "master=vrec", "channels=1",
                       "channel_map=mono", f"master_channel_map={side}", "remix=no")
        self.pactl("load-module", "module-combine-sink", "sink_name=vboth", "slaves=vmic,vuser",
                   "rate=16000", "channels=1")
        return self

    def loopback(self, source: str, sink: str, latency_ms: int = 60) -> str:
        """Route `source` into `sink` (for example her voice back into the microphone): returns the module id."""
        return self.pactl("load-module", "module-loopback", f"source={source}", f"sink={sink}",
                          f"latency_msec={latency_ms}", "source_dont_move=true", "sink_dont_move=true")

    def unload(self, module_id: str) -> None:
        self.pactl("unload-module", module_id)

    def remove_sink(self, name: str) -> None:
        """Unload the module that made sink `name` (a device unplugged); its monitor source goes with it."""
        for line in self.pactl("list", "short", "modules").splitlines():
            module_id, _, rest = line.partition("\t")
            if f"sink_name={name} " in rest + " ":
                self.unload(module_id)
                return
        raise DeviceError(f"no module made a sink named {name}")

    def play(self, wav: Path, sink: str = "vmic") -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["paplay", f"--device={sink}", str(wav)], env=self.env())
        self._children.append(proc)
        return proc

    def record(self, source: str, path: Path, channels: int = 1) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["parec", f"--device={source}", "--rate=16000", f"--channels={channels}", "--format=s16le",
             "--file-format=wav", "--latency-msec=250", str(path)], env=self.env())
        self._children.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self._children:
            if proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=3)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None


@contextlib.contextmanager
def pulse_rig(workdir: Path | None = None) -> Iterator[PulseRig]:
    rig = PulseRig(workdir).start()
    try:
        yield rig
    finally:
        rig.stop()
