"""The alerts worker's clock: the shifted system clock, or - for tests - a file.

``ALERTS_CLOCK_FILE`` names a file holding one ISO 8601 instant with its offset (e.g.
``2025-05-09T16:00:00+07:00``); the worker reads it on every use of "now", so a test moves
the worker's time by rewriting the file (atomically: write a temporary file and rename it).
A missing or unreadable file keeps the last good value.
"""

import datetime as dt
from pathlib import Path

from services.runtime.clock import Clock, SystemClock


class FileClock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: dt.datetime | None = None

    def now(self) -> dt.datetime:
        try:
            value = dt.datetime.fromisoformat(self.path.read_text(encoding="utf-8").strip())
            if value.tzinfo is None:
                raise ValueError("naive time")
            self._last = value.astimezone(dt.UTC)
        except (OSError, ValueError):
            if self._last is None:
                raise
        assert self._last is not None
        return self._last


def write_clock(path: Path, moment: dt.datetime) -> None:
    """Set a :class:`FileClock` (atomic replace)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(moment.isoformat(), encoding="utf-8")
    tmp.replace(path)


def clock_for(clock_file: Path | None, offset_seconds: float) -> Clock:
    return FileClock(clock_file) if clock_file is not None else SystemClock(offset_seconds)
