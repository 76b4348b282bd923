"""The session log: JSONL, one record a line, each written whole and flushed at once.

Every record carries `type` and `t` (session-clock seconds). A crash loses at most the line in flight.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from voiceos.clock import SessionClock

log = logging.getLogger(__name__)


def default_log_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("voiceos")) / "sessions"


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class SessionLog:
    def __init__(self, log_dir: Path, clock: SessionClock, name: str | None = None) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = log_dir / (name or f"session-{stamp}-{os.getpid()}.jsonl")
        self.clock = clock
        self._lock = threading.Lock()
        self._fh = self.path.open("a", encoding="utf-8")
        self.closed = False

    def write(self, type_: str, **fields: Any) -> dict[str, Any]:
        record = {"type": type_, "t": round(self.clock.now(), 4), **fields}
        line = json.dumps(_clean(record), ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            if self.closed:
                log.debug("log closed; dropped %s record", type_)
                return record
            self._fh.write(line)
            self._fh.flush()
        return record

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    """Records of a session log; a torn last line (a crash mid-write) is skipped."""
    records = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s: skipped a torn line", path)
    return records
