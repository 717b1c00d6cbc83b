"""The system clock, shifted by a configured offset (see ``ClockSettings``)."""

import datetime as dt
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


@dataclass(frozen=True, slots=True)
class SystemClock:
    """Wall-clock time plus ``offset_seconds``; always timezone-aware (UTC)."""

    offset_seconds: float = 0.0

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(time.time() + self.offset_seconds, tz=dt.UTC)


@dataclass(slots=True)
class FixedClock:
    """A clock that only moves when told to (tests, replays)."""

    current: dt.datetime

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, delta: dt.timedelta) -> None:
        self.current = self.current + delta
