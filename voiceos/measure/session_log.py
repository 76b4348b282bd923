"""The session log: JSONL, one record a line, each written whole and flushed at once.

Every record carries `type` and `t` (session-clock seconds). A crash loses at most the line in flight.
Typed records (`loop.record.TurnRecord`) go in through `fields_of` and come back through `from_fields`,
which takes the logs of older versions too: a field they lack gets its default, one it does not know
is ignored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
import time
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from voiceos.measure.clock import SessionClock

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


def read_logs(folder: Path) -> list[dict[str, Any]]:
    """Records of every session log in `folder`, oldest file first."""
    return [record for path in sorted(Path(folder).glob("*.jsonl")) for record in read_log(path)]


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


T = TypeVar("T")


def fields_of(record: Any) -> dict[str, Any]:
    """A typed record (a dataclass, nested ones included) as the JSON fields it is written with."""
    return dataclasses.asdict(record)


def from_fields(cls: type[T], data: Mapping[str, Any]) -> T:
    """A typed record read back from its JSON fields: missing fields take their defaults, unknown ones are
    dropped, nested dataclasses (also inside lists and `X | None`) are built the same way."""
    hints = typing.get_type_hints(cls)
    kwargs = {f.name: _typed(hints[f.name], data[f.name]) for f in dataclasses.fields(cls)  # type: ignore[arg-type]
              if f.name in data}
    return cls(**kwargs)


def _typed(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_fields(hint, value) if isinstance(value, Mapping) else value
    origin = typing.get_origin(hint)
    if origin is list and isinstance(value, list):
        (item,) = typing.get_args(hint) or (Any,)
        return [_typed(item, v) for v in value]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            if dataclasses.is_dataclass(option) and isinstance(value, Mapping):
                return _typed(option, value)
    return value
