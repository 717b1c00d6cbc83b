"""Calendar arithmetic in Asia/Ho_Chi_Minh (services/kpi_api/domain/periods.py)."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.calendar import (
    GRANULARITIES,
    VN,
    buckets,
    ceil,
    count_buckets,
    decompose,
    default_period,
    floor,
    previous,
    step,
)

UTC = dt.UTC


def vn(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=VN)


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=VN)


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [
        ("hour", vn(2025, 5, 14, 9)),
        ("day", vn(2025, 5, 14)),
        ("week", vn(2025, 5, 12)),  # Monday
        ("month", vn(2025, 5, 1)),
        ("quarter", vn(2025, 4, 1)),
        ("year", vn(2025, 1, 1)),
    ],
)
def test_floor_in_vietnam(granularity, expected):
    moment = dt.datetime(2025, 5, 14, 2, 45, 10, tzinfo=UTC)  # 09:45 in Vietnam, a Wednesday
    assert floor(moment, granularity) == expected


def test_floor_day_crosses_utc_midnight():
    assert floor(dt.datetime(2025, 5, 4, 17, 30, tzinfo=UTC), "day") == vn(2025, 5, 5)
    assert floor(dt.datetime(2025, 5, 4, 16, 59, tzinfo=UTC), "day") == vn(2025, 5, 4)


def test_naive_moments_are_vietnamese_local_time():
    assert floor(dt.datetime(2025, 5, 14, 9, 45), "hour") == vn(2025, 5, 14, 9)


@pytest.mark.parametrize(
    ("moment", "quarter"),
    [
        ((2025, 1, 1), (2025, 1, 1)),
        ((2025, 3, 31, 23), (2025, 1, 1)),
        ((2025, 4, 1), (2025, 4, 1)),
        ((2025, 9, 30), (2025, 7, 1)),
        ((2025, 10, 1), (2025, 10, 1)),
        ((2025, 12, 31, 23, 59), (2025, 10, 1)),
    ],
)
def test_quarters(moment, quarter):
    assert floor(vn(*moment), "quarter") == vn(*quarter)


def test_weeks_start_on_monday():
    sunday = vn(2025, 5, 18, 23, 59)
    monday = vn(2025, 5, 19, 0, 0)
    assert floor(sunday, "week") == vn(2025, 5, 12)
    assert floor(monday, "week") == monday
    assert floor(monday, "week").weekday() == 0


def test_step_and_ceil():
    assert step(vn(2025, 12, 1), "month") == vn(2026, 1, 1)
    assert step(vn(2025, 10, 1), "quarter") == vn(2026, 1, 1)
    assert step(vn(2025, 1, 1), "year") == vn(2026, 1, 1)
    assert step(vn(2025, 5, 31), "day") == vn(2025, 6, 1)
    assert step(vn(2025, 12, 29), "week") == vn(2026, 1, 5)
    assert ceil(vn(2025, 5, 1), "month") == vn(2025, 5, 1)
    assert ceil(vn(2025, 5, 1, 0, 0, 1), "month") == vn(2025, 6, 1)


def test_buckets_align_outwards():
    got = buckets(vn(2025, 5, 14, 10), vn(2025, 7, 2, 5), "month")
    assert got == [(vn(2025, 5, 1), vn(2025, 6, 1)), (vn(2025, 6, 1), vn(2025, 7, 1)), (vn(2025, 7, 1), vn(2025, 8, 1))]
    assert buckets(vn(2025, 5, 1), vn(2025, 5, 1), "day") == []


moments = st.datetimes(
    min_value=dt.datetime(2023, 1, 1),
    max_value=dt.datetime(2026, 12, 31),
    timezones=st.sampled_from([UTC, VN, dt.timezone(dt.timedelta(hours=-5))]),
)


@settings(max_examples=300, deadline=None)
@given(moments, st.sampled_from(GRANULARITIES))
def test_floor_ceil_step_laws(moment, granularity):
    lo, hi = floor(moment, granularity), ceil(moment, granularity)
    assert lo <= moment <= hi
    assert floor(lo, granularity) == lo
    assert hi == lo or hi == step(lo, granularity)
    nxt = step(lo, granularity)
    assert nxt > moment and floor(nxt, granularity) == nxt
    assert lo.utcoffset() == dt.timedelta(hours=7)


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(0, 24 * 400), st.sampled_from(GRANULARITIES))
def test_buckets_are_contiguous_aligned_and_counted(start, hours, granularity):
    end = start + dt.timedelta(hours=hours, minutes=7)
    if granularity == "hour" and hours > 24 * 40:
        end = start + dt.timedelta(hours=hours % (24 * 40))
    got = buckets(start, end, granularity)
    assert count_buckets(start, end, granularity) == len(got)
    if got:
        assert got[0][0] <= start and got[-1][1] >= end
        for (a, b), (c, _) in zip(got, got[1:]):
            assert b == c
        for a, b in got:
            assert floor(a, granularity) == a and step(a, granularity) == b


# --- decompose ------------------------------------------------------------------------------------


def pieces_as_ranges(p) -> list[tuple[dt.datetime, dt.datetime, str]]:
    out = [(a, b, "hour") for a, b in p.hours]
    out += [(midnight(a), midnight(b), "day") for a, b in p.days]
    out += [(midnight(a), midnight(b), "month") for a, b in p.months]
    return sorted(out)


@settings(max_examples=400, deadline=None)
@given(moments, moments)
def test_decompose_exactly_covers_the_hour_aligned_period(x, y):
    start, end = min(x, y), max(x, y)
    p = decompose(start, end)
    a, b = floor(start, "hour"), ceil(end, "hour")
    ranges = pieces_as_ranges(p)
    if a >= b:
        assert ranges == []
        return
    assert ranges[0][0] == a and ranges[-1][1] == b
    for (s1, e1, _), (s2, _, _) in zip(ranges, ranges[1:]):
        assert e1 == s2  # contiguous and disjoint
    for s, e, kind in ranges:
        assert s < e
        if kind == "day":
            assert floor(s, "day") == s and floor(e, "day") == e
            # coarsest grain: a day piece never holds a whole calendar month
            assert ceil(s, "month") >= floor(e, "month")
        if kind == "month":
            assert s.day == 1 and e.day == 1
        if kind == "hour":
            assert s.tzinfo == UTC
            assert ceil(s, "day") >= floor(e, "day")  # never a whole local day in an hour piece
    assert len(p.hours) <= 2 and len(p.days) <= 2 and len(p.months) <= 1


def test_decompose_example():
    p = decompose(vn(2025, 4, 29, 22, 15), vn(2025, 7, 2, 3, 10))
    assert p.hours == (
        (dt.datetime(2025, 4, 29, 15, tzinfo=UTC), dt.datetime(2025, 4, 29, 17, tzinfo=UTC)),
        (dt.datetime(2025, 7, 1, 17, tzinfo=UTC), dt.datetime(2025, 7, 1, 21, tzinfo=UTC)),
    )
    assert p.days == ((dt.date(2025, 4, 30), dt.date(2025, 5, 1)), (dt.date(2025, 7, 1), dt.date(2025, 7, 2)))
    assert p.months == ((dt.date(2025, 5, 1), dt.date(2025, 7, 1)),)


def test_decompose_short_and_empty_periods():
    assert decompose(vn(2025, 5, 5, 10), vn(2025, 5, 5, 10)).hours == ()
    assert decompose(vn(2025, 5, 5, 10), vn(2025, 5, 5, 10, 1)).hours == (
        (dt.datetime(2025, 5, 5, 3, tzinfo=UTC), dt.datetime(2025, 5, 5, 4, tzinfo=UTC)),
    )
    whole_day = decompose(vn(2025, 5, 5), vn(2025, 5, 6))
    assert whole_day.hours == () and whole_day.days == ((dt.date(2025, 5, 5), dt.date(2025, 5, 6)),)
    whole_month = decompose(vn(2025, 2, 1), vn(2025, 3, 1))
    assert (
        whole_month.hours == ()
        and whole_month.days == ()
        and whole_month.months == ((dt.date(2025, 2, 1), dt.date(2025, 3, 1)),)
    )


# --- previous and default period -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ((vn(2025, 5, 1), vn(2025, 6, 1)), (vn(2025, 4, 1), vn(2025, 5, 1))),
        ((vn(2025, 3, 1), vn(2025, 4, 1)), (vn(2025, 2, 1), vn(2025, 3, 1))),  # 31 days → 28 days
        ((vn(2025, 1, 1), vn(2025, 2, 1)), (vn(2024, 12, 1), vn(2025, 1, 1))),
        ((vn(2025, 4, 1), vn(2025, 7, 1)), (vn(2025, 1, 1), vn(2025, 4, 1))),  # a quarter
        ((vn(2025, 1, 1), vn(2026, 1, 1)), (vn(2024, 1, 1), vn(2025, 1, 1))),  # a year
        ((vn(2025, 5, 10), vn(2025, 5, 17)), (vn(2025, 5, 3), vn(2025, 5, 10))),  # a week
    ],
)
def test_previous(period, expected):
    assert previous(*period) == expected


def test_previous_of_a_month_given_in_utc():
    start = dt.datetime(2025, 4, 30, 17, tzinfo=UTC)  # 1 May local
    end = dt.datetime(2025, 5, 31, 17, tzinfo=UTC)  # 1 June local
    assert previous(start, end) == (vn(2025, 4, 1), vn(2025, 5, 1))


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(1, 24 * 90))
def test_previous_ends_where_the_period_starts(start, hours):
    end = start + dt.timedelta(hours=hours)
    a, b = previous(start, end)
    assert b == start and a < b
    if not (floor(start, "month") == start and floor(end, "month") == end):
        assert b - a == end - start


def test_default_period_is_thirty_whole_days_including_today():
    now = dt.datetime(2025, 5, 4, 18, tzinfo=UTC)  # 5 May 01:00 local
    start, end = default_period(now)
    assert end == vn(2025, 5, 6) and start == vn(2025, 4, 6)
    assert default_period(now, days=1) == (vn(2025, 5, 5), vn(2025, 5, 6))


def test_query_periods_outside_the_supported_years_are_a_clear_error() -> None:
    """Year 1 or 9999 would overflow the previous period (rankings); a 422, never a 500."""
    from services.kpi_api.service import Period
    from services.runtime.problems import InvalidQuery

    now = dt.datetime(2025, 5, 5, tzinfo=dt.UTC)
    for start, end in (
        (dt.datetime(1, 1, 1, tzinfo=dt.UTC), None),
        (None, dt.datetime(9999, 12, 31, tzinfo=dt.UTC)),
    ):
        with pytest.raises(InvalidQuery):
            Period.parse(start, end, now)
    widest = Period.parse(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(2199, 12, 31, tzinfo=dt.UTC), now)
    assert widest.previous().start.year == 1740
