"""Working-time arithmetic over an office calendar. Pure: no I/O, no clock.

A :class:`Calendar` knows the office hours of a working day (local time), the weekdays that
are working days, the public holidays (days off) and the swapped Saturdays that are worked
instead. Instants are timezone-aware; a naive instant is an error.

Laws (tested with hypothesis):
- ``working_seconds(a, b) + working_seconds(b, c) == working_seconds(a, c)`` for a ≤ b ≤ c;
- ``working_seconds(a, b) == 0`` when [a, b) lies in a night, a weekend or a holiday;
- ``working_seconds(a, add_working(a, s)) == s`` and ``add_working`` ends inside office hours.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.core.calendar import VN

Interval = tuple[dt.time, dt.time]

OFFICE_HOURS: tuple[Interval, ...] = ((dt.time(7, 30), dt.time(11, 30)), (dt.time(13, 30), dt.time(17, 0)))
WORKING_WEEKDAYS = frozenset({0, 1, 2, 3, 4})  # Monday to Friday

_MAX_DAYS = 366 * 30  # add_working gives up after 30 years without a working second


def _seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@dataclass(frozen=True, slots=True)
class Calendar:
    """Office hours in ``zone``, working weekdays, holidays and extra working days."""

    holidays: frozenset[dt.date] = frozenset()
    working_days: frozenset[dt.date] = frozenset()  # swapped Saturdays: worked although weekend
    hours: tuple[Interval, ...] = OFFICE_HOURS
    weekdays: frozenset[int] = WORKING_WEEKDAYS
    zone: dt.tzinfo = VN
    _spans: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spans = tuple(sorted((_seconds(a), _seconds(b)) for a, b in self.hours))
        for (a, b), nxt in zip(spans, (*spans[1:], None), strict=True):
            if not a < b or (nxt is not None and b > nxt[0]):
                raise ValueError(f"office hours must be ordered, non-empty and disjoint: {self.hours}")
        object.__setattr__(self, "_spans", spans)

    @property
    def seconds_per_day(self) -> int:
        return sum(b - a for a, b in self._spans)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.working_days:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def _day_start(self, day: dt.date) -> dt.datetime:
        return dt.datetime(day.year, day.month, day.day, tzinfo=self.zone)

    def _worked_before(self, second_of_day: float) -> float:
        """Working seconds of a working day before a local second of that day."""
        return sum(max(0.0, min(second_of_day, b) - a) for a, b in self._spans)

    def working_seconds(self, start: dt.datetime, end: dt.datetime) -> float:
        """Office seconds in [start, end); 0 when end ≤ start."""
        _aware(start, end)
        if end <= start:
            return 0.0
        a, b = start.astimezone(self.zone), end.astimezone(self.zone)
        total = 0.0
        day = a.date()
        while day <= b.date():
            if self.is_working_day(day):
                base = self._day_start(day)
                lo = (a - base).total_seconds() if day == a.date() else 0.0
                hi = (b - base).total_seconds() if day == b.date() else 86400.0
                total += self._worked_before(hi) - self._worked_before(lo)
            day += dt.timedelta(days=1)
        return round(total, 6)  # microseconds: what datetimes resolve

    def add_working(self, start: dt.datetime, seconds: float) -> dt.datetime:
        """The first instant at which ``seconds`` office seconds have passed since ``start``."""
        _aware(start)
        if seconds < 0:
            raise ValueError("seconds must be ≥ 0")
        if seconds == 0:
            return start
        a = start.astimezone(self.zone)
        day = a.date()
        remaining = float(seconds)
        for _ in range(_MAX_DAYS):
            if self.is_working_day(day):
                base = self._day_start(day)
                offset = (a - base).total_seconds() if day == a.date() else 0.0
                for lo, hi in self._spans:
                    begin = max(float(lo), offset)
                    if begin >= hi:
                        continue
                    if remaining <= hi - begin:
                        return (base + dt.timedelta(seconds=begin + remaining)).astimezone(start.tzinfo)
                    remaining -= hi - begin
            day += dt.timedelta(days=1)
        raise ValueError("no working time within 30 years of the start")

    def working_hours(self, start: dt.datetime, end: dt.datetime) -> float:
        return self.working_seconds(start, end) / 3600


def _aware(*moments: dt.datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("instants must be timezone-aware")


def calendar_of(
    holidays: Iterable[dt.date], working_days: Iterable[dt.date] = (), hours: tuple[Interval, ...] = OFFICE_HOURS
) -> Calendar:
    return Calendar(holidays=frozenset(holidays), working_days=frozenset(working_days), hours=hours)
