"""Time in Vietnam: the one time zone, event-hour numbers, series buckets and periods.

Vietnam keeps UTC+7 all year (no daylight saving), so an event's UTC hour is also a local
hour, and its local day is ``(hour + 7) // 24``. Counters exist at three grains (UTC hour,
local day, local month). A period is answered by reading the coarsest grain that fits:
whole months from the monthly table, whole days at the edges from the daily table, and
leftover hours from the hourly table. The number of rows read is therefore bounded by the
shape of the period, not by its length.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

VN = ZoneInfo("Asia/Ho_Chi_Minh")
VN_NAME = "Asia/Ho_Chi_Minh"  # the same zone, for SQL (AT TIME ZONE)
VN_OFFSET = dt.timedelta(hours=7)
EPOCH_DAY = dt.date(1970, 1, 1)


def local_date(moment: dt.datetime) -> dt.date:
    """The calendar date in Vietnam of an aware datetime."""
    return (moment.astimezone(dt.UTC) + VN_OFFSET).date()


def hour_number(moment: dt.datetime) -> int:
    """Hours since the epoch (UTC) of an aware datetime: the key of an hourly counter."""
    return int(moment.timestamp()) // 3600


def day_number(hour: int) -> int:
    """Vietnam's local day number (days since 1970-01-01) of an hour number."""
    return (hour + 7) // 24


def day_of_hour(hour: int) -> dt.date:
    """Vietnam's local calendar day of an hour number."""
    return EPOCH_DAY + dt.timedelta(days=day_number(hour))


Granularity = Literal["hour", "day", "week", "month", "quarter", "year"]
GRANULARITIES: tuple[Granularity, ...] = ("hour", "day", "week", "month", "quarter", "year")


def local(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VN)
    return moment.astimezone(VN)


def floor(moment: dt.datetime, granularity: Granularity) -> dt.datetime:
    """Start of the bucket holding ``moment`` (local time, aware)."""
    t = local(moment)
    if granularity == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "day":
        return day
    if granularity == "week":
        return day - dt.timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    if granularity == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def step(start: dt.datetime, granularity: Granularity) -> dt.datetime:
    """Start of the bucket after the one starting at ``start``."""
    if granularity == "hour":
        return local(start + dt.timedelta(hours=1))
    if granularity == "day":
        return (start + dt.timedelta(days=1)).replace(tzinfo=VN)
    if granularity == "week":
        return (start + dt.timedelta(days=7)).replace(tzinfo=VN)
    months = {"month": 1, "quarter": 3, "year": 12}[granularity]
    total = start.year * 12 + start.month - 1 + months
    return start.replace(year=total // 12, month=total % 12 + 1)


def ceil(moment: dt.datetime, granularity: Granularity) -> dt.datetime:
    start = floor(moment, granularity)
    return start if start == local(moment) else step(start, granularity)


def buckets(start: dt.datetime, end: dt.datetime, granularity: Granularity) -> list[tuple[dt.datetime, dt.datetime]]:
    """The buckets covering [start, end), aligned outwards to whole buckets."""
    out = []
    cursor = floor(start, granularity)
    last = ceil(end, granularity)
    while cursor < last:
        nxt = step(cursor, granularity)
        out.append((cursor, nxt))
        cursor = nxt
    return out


def count_buckets(start: dt.datetime, end: dt.datetime, granularity: Granularity) -> int:
    """How many buckets :func:`buckets` would return, without building them."""
    a, b = floor(start, granularity), ceil(end, granularity)
    if granularity == "hour":
        return int((b - a).total_seconds() // 3600)
    if granularity in ("day", "week"):
        return (b.date() - a.date()).days // (1 if granularity == "day" else 7)
    months = (b.year - a.year) * 12 + b.month - a.month
    return months // {"month": 1, "quarter": 3, "year": 12}[granularity]


@dataclass(frozen=True, slots=True)
class Pieces:
    """A period split into the grains that answer it: UTC hour ranges, local day ranges,
    local month ranges (each half-open)."""

    hours: tuple[tuple[dt.datetime, dt.datetime], ...] = field(default=())
    days: tuple[tuple[dt.date, dt.date], ...] = field(default=())
    months: tuple[tuple[dt.date, dt.date], ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.hours or self.days or self.months)


def decompose(start: dt.datetime, end: dt.datetime) -> Pieces:
    """Split [start, end) - aligned outwards to whole hours - into months, days and hours."""
    a, b = floor(start, "hour"), ceil(end, "hour")
    if a >= b:
        return Pieces()
    d0, d1 = ceil(a, "day"), floor(b, "day")
    if d0 >= d1:
        return Pieces(hours=((a.astimezone(dt.UTC), b.astimezone(dt.UTC)),))
    hours = []
    if a < d0:
        hours.append((a.astimezone(dt.UTC), d0.astimezone(dt.UTC)))
    if d1 < b:
        hours.append((d1.astimezone(dt.UTC), b.astimezone(dt.UTC)))
    m0, m1 = ceil(d0, "month"), floor(d1, "month")
    days, months = [], []
    if m0 >= m1:
        days.append((d0.date(), d1.date()))
    else:
        if d0 < m0:
            days.append((d0.date(), m0.date()))
        if m1 < d1:
            days.append((m1.date(), d1.date()))
        months.append((m0.date(), m1.date()))
    return Pieces(hours=tuple(hours), days=tuple(days), months=tuple(months))


def previous(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The period of equal length just before [start, end). Whole calendar months shift by
    months (so "May" compares with "April"), anything else by its duration."""
    a, b = local(start), local(end)
    if floor(a, "month") == a and floor(b, "month") == b and a < b:
        months = (b.year - a.year) * 12 + b.month - a.month
        total = a.year * 12 + a.month - 1 - months
        return a.replace(year=total // 12, month=total % 12 + 1), a
    return a - (b - a), a


def default_period(now: dt.datetime, days: int = 30) -> tuple[dt.datetime, dt.datetime]:
    """The last ``days`` whole local days, up to and including today."""
    end = step(floor(now, "day"), "day")
    return end - dt.timedelta(days=days), end
