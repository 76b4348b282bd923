"""A program run in a pane of a private tmux server: a real terminal for tests and benchmarks of the live
view (tests/test_live_view.py, scripts/measure_latency.py --view). Keys are sent, the screen captured as
text, and the program's exit code kept; the pane stays open after it exits, showing what it printed last.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from pathlib import Path

from voiceos.errors import VoiceosError


class TmuxPane:
    """`command` in a `width`×`height` pane, with `env`, started in `cwd`; its stderr goes to `stderr`."""

    def __init__(self, workdir: Path, command: list[str], env: dict[str, str], *, stderr: Path, cwd: Path,
                 width: int = 120, height: int = 40) -> None:
        if not shutil.which("tmux"):
            raise VoiceosError("tmux is not installed (./scripts/setup.sh installs it)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "tmux.sock"
        self.rc_path = workdir / "exit-code"
        self.rc_path.unlink(missing_ok=True)
        self.env = env
        self.size = (width, height)
        self.shell = (f"cd {shlex.quote(str(cwd))}; {shlex.join(command)} 2>{shlex.quote(str(stderr))}; "
                      f"echo $? >{shlex.quote(str(self.rc_path))}; exec sleep 3600")

    def _tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-S", str(self.socket), "-f", "/dev/null", *args], env=self.env,
                             capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise VoiceosError(f"tmux {args[0]} failed: {out.stderr.strip()}")
        return out.stdout

    def start(self) -> TmuxPane:
        """A new server (so the pane gets `env`, not a running server's), one session, one pane."""
        width, height = self.size
        self._tmux("new-session", "-d", "-s", "voiceos", "-x", str(width), "-y", str(height), self.shell)
        return self

    def capture(self) -> str:
        """The pane's screen as plain text, one line per row."""
        return self._tmux("capture-pane", "-p", "-t", "voiceos")

    def send(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "voiceos", *keys)

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", "voiceos", "-x", str(width), "-y", str(height))

    def exit_code(self) -> int | None:
        """The program's exit code once it has exited (None while it runs)."""
        text = self.rc_path.read_text().strip() if self.rc_path.exists() else ""
        return int(text) if text else None

    def wait(self, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while (code := self.exit_code()) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return code

    def close(self) -> None:
        """End the server, and the program with it if it still runs (tmux sends it SIGHUP)."""
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], env=self.env, capture_output=True,
                       timeout=10)
