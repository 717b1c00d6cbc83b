"""The alerts' pure core: working time, the holiday calendar, the threshold and silence
state machines, and the rules files."""

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.kpi import load_registry
from services.alerts.notify import backoff_s, payload, sign, verify
from services.alerts.rules import load_calendar, load_rules
from services.core.alerting import silence as sm
from services.core.alerting.threshold import Action, AlertState, Thresholds, step
from services.core.alerting.worktime import VN, Calendar

CAL = load_calendar()
PLAIN = Calendar()  # no holidays


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=VN)


instants = st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2026, 12, 31)).map(
    lambda d: d.replace(tzinfo=VN)
)


# -- working time ----------------------------------------------------------------------------


def test_a_working_day_has_seven_and_a_half_office_hours() -> None:
    assert CAL.working_hours(at("2025-05-05 00:00"), at("2025-05-06 00:00")) == 7.5
    assert CAL.working_hours(at("2025-05-05 08:00"), at("2025-05-05 12:00")) == 3.5
    assert CAL.working_hours(at("2025-05-05 11:00"), at("2025-05-05 14:00")) == 1.0  # lunch does not count


def test_nights_weekends_and_holidays_do_not_count() -> None:
    assert CAL.working_seconds(at("2025-05-05 17:00"), at("2025-05-06 07:30")) == 0  # night
    assert CAL.working_seconds(at("2025-05-09 17:00"), at("2025-05-12 07:30")) == 0  # weekend
    assert CAL.working_seconds(at("2025-04-30 00:00"), at("2025-05-05 07:30")) == 0  # 30/4, 1/5, swapped 2/5
    assert CAL.working_hours(at("2025-04-26 00:00"), at("2025-04-27 00:00")) == 7.5  # Saturday worked in exchange
    assert CAL.working_seconds(at("2025-01-25 00:00"), at("2025-02-03 07:30")) == 0  # Tết Ất Tỵ


def test_holidays_of_the_labour_code_with_their_lunar_dates() -> None:
    off = [d for d in CAL.holidays]
    # Tết Nguyên đán (first lunar day) and Giỗ Tổ Hùng Vương (10/3 lunar), as Gregorian dates
    for day in ("2024-02-12", "2025-01-29", "2026-02-17", "2024-04-18", "2025-04-07", "2026-04-27"):
        assert dt.date.fromisoformat(day) in off, day
    for day in ("2024-01-01", "2025-01-01", "2026-01-01", "2025-04-30", "2025-05-01", "2025-09-02", "2025-09-01"):
        assert dt.date.fromisoformat(day) in off, day
    assert all(not CAL.is_working_day(d) for d in CAL.holidays)


def test_add_working_skips_the_weekend() -> None:
    assert CAL.add_working(at("2025-05-09 16:00"), 2 * 3600) == at("2025-05-12 08:30")
    assert CAL.add_working(at("2025-05-05 06:00"), 60) == at("2025-05-05 07:31")
    assert CAL.add_working(at("2025-05-05 11:00"), 3600) == at("2025-05-05 14:00")


@settings(max_examples=300, deadline=None)
@given(instants, instants, instants)
def test_working_time_is_additive(a: dt.datetime, b: dt.datetime, c: dt.datetime) -> None:
    a, b, c = sorted((a, b, c))
    assert CAL.working_seconds(a, b) + CAL.working_seconds(b, c) == pytest.approx(CAL.working_seconds(a, c), abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(instants, st.floats(min_value=0, max_value=40 * 7.5 * 3600))
def test_add_working_inverts_working_seconds(a: dt.datetime, seconds: float) -> None:
    end = CAL.add_working(a, seconds)
    assert end >= a
    assert CAL.working_seconds(a, end) == pytest.approx(seconds, abs=1e-3)
    if seconds > 0:  # it ends in office hours of a working day: not a moment later than needed
        local = end.astimezone(VN)
        assert CAL.is_working_day(local.date())
        assert dt.time(7, 30) <= local.time() <= dt.time(11, 30) or dt.time(13, 30) <= local.time() <= dt.time(17, 0)


@settings(max_examples=300, deadline=None)
@given(instants, st.integers(min_value=0, max_value=14 * 3600))
def test_nothing_counts_at_night_at_weekends_or_on_holidays(a: dt.datetime, length: int) -> None:
    b = a + dt.timedelta(seconds=length)
    worked = CAL.working_seconds(a, b)
    assert 0 <= worked <= length
    la, lb = a.astimezone(VN), b.astimezone(VN)
    same_day = la.date() == lb.date() or lb.time() == dt.time(0)
    off_day = not CAL.is_working_day(la.date())
    evening = la.time() >= dt.time(17, 0)
    early = lb.time() <= dt.time(7, 30) and la.date() == lb.date()
    lunch = dt.time(11, 30) <= la.time() and lb.time() <= dt.time(13, 30) and la.date() == lb.date()
    if (same_day and (off_day or evening)) or early or lunch:
        assert worked == 0


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError):
        CAL.working_seconds(dt.datetime(2025, 5, 5), dt.datetime(2025, 5, 6))


def test_calendar_rejects_overlapping_hours() -> None:
    with pytest.raises(ValueError):
        Calendar(hours=((dt.time(8), dt.time(12)), (dt.time(11), dt.time(13))))


# -- threshold state machine -----------------------------------------------------------------

HIGHER = Thresholds(red=60, green=90, direction="higher")
LOWER = Thresholds(red=168, green=72, direction="lower")


def test_threshold_opens_in_red_closes_in_green() -> None:
    assert step(AlertState.CLOSED, 59.9, HIGHER) == step(AlertState.CLOSED, 10, HIGHER)
    assert step(AlertState.CLOSED, 59.9, HIGHER).action is Action.OPEN
    assert step(AlertState.OPEN, 90, HIGHER).action is Action.CLOSE
    assert step(AlertState.CLOSED, 200, LOWER).action is Action.OPEN
    assert step(AlertState.OPEN, 72, LOWER).action is Action.CLOSE
    assert step(AlertState.OPEN, None, HIGHER).action is Action.NONE


@given(st.lists(st.floats(min_value=60, max_value=89.999), min_size=1, max_size=50))
def test_a_value_hovering_between_red_and_green_never_flaps(values: list[float]) -> None:
    for start in AlertState:
        state = start
        for value in values:
            result = step(state, value, HIGHER)
            assert result.action is Action.NONE
            state = result.state
        assert state is start


@given(st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=100)), max_size=60))
def test_transitions_alternate_and_follow_the_bands(values: list[float | None]) -> None:
    state, actions = AlertState.CLOSED, []
    for value in values:
        result = step(state, value, HIGHER)
        if result.action is Action.OPEN:
            assert value is not None and value < 60
        if result.action is Action.CLOSE:
            assert value is not None and value >= 90
        if result.action is not Action.NONE:
            actions.append(result.action)
        state = result.state
    assert all(a is not b for a, b in zip(actions, actions[1:]))  # open, close, open, …
    assert not actions or actions[0] is Action.OPEN


def test_bands_in_the_wrong_order_are_refused() -> None:
    with pytest.raises(ValueError):
        Thresholds(red=90, green=60, direction="higher")


# -- silence state machine -------------------------------------------------------------------

PERIOD = 2 * 3600.0


def test_silence_opens_after_the_period_in_working_hours_only() -> None:
    last = at("2025-05-09 16:00")  # Friday
    silence = sm.Silence(last, at("2025-05-01 00:00"))
    assert sm.on_tick(AlertState.CLOSED, silence, at("2025-05-10 12:00"), PERIOD, CAL).action is Action.NONE
    assert sm.on_tick(AlertState.CLOSED, silence, at("2025-05-12 08:29"), PERIOD, CAL).action is Action.NONE
    assert sm.on_tick(AlertState.CLOSED, silence, at("2025-05-12 08:30"), PERIOD, CAL).action is Action.OPEN
    assert sm.on_tick(AlertState.OPEN, silence, at("2025-05-12 09:00"), PERIOD, CAL).action is Action.NONE


def test_a_unit_never_heard_from_is_silent_since_the_first_start() -> None:
    silence = sm.Silence(None, at("2025-05-05 08:00"))
    assert sm.on_tick(AlertState.CLOSED, silence, at("2025-05-05 09:59"), PERIOD, CAL).action is Action.NONE
    assert sm.on_tick(AlertState.CLOSED, silence, at("2025-05-05 10:00"), PERIOD, CAL).action is Action.OPEN


def test_the_next_event_closes_but_an_old_late_event_does_not() -> None:
    now = at("2025-05-12 10:00")
    old = sm.Silence(sm.latest(at("2025-05-09 16:00"), at("2025-05-08 09:00")), at("2025-05-01 00:00"))
    assert sm.on_event(AlertState.OPEN, old, now, PERIOD, CAL).action is Action.NONE
    fresh = sm.Silence(sm.latest(at("2025-05-09 16:00"), now), at("2025-05-01 00:00"))
    assert sm.on_event(AlertState.OPEN, fresh, now, PERIOD, CAL).action is Action.CLOSE
    assert sm.on_event(AlertState.CLOSED, fresh, now, PERIOD, CAL).action is Action.NONE


@settings(max_examples=200, deadline=None)
@given(instants, st.floats(min_value=60, max_value=30 * 3600), st.integers(0, 7 * 86400))
def test_silence_agrees_with_working_seconds(last: dt.datetime, period: float, later: int) -> None:
    now = last + dt.timedelta(seconds=later)
    silent = sm.is_silent(sm.Silence(last, last), now, period, CAL)
    assert (
        silent == (CAL.working_seconds(last, now) >= period - 1e-6)
        or abs(CAL.working_seconds(last, now) - period) < 1e-3
    )


# -- rules as data ---------------------------------------------------------------------------


def test_threshold_rules_are_every_alerting_kpi() -> None:
    registry = load_registry()
    rules = load_rules(registry)
    assert {r.kpi.id for r in rules.thresholds} == {k.id for k in registry.kpis if k.alert}
    rule = next(r for r in rules.thresholds if r.kpi.id == "incoming_electronic_rate")
    assert (rule.thresholds.red, rule.thresholds.green, rule.window_days) == (60, 90, 7)


def test_silence_rules_match_their_families_and_scale() -> None:
    rules = load_rules(load_registry(), silence_scale=0.5, silence_periods={"dossier_online": 0.1})
    incoming = next(r for r in rules.silences if r.family == "incoming_on_system")
    online = next(r for r in rules.silences if r.family == "dossier_online")
    assert incoming.period_working_hours == 2.0 and online.period_working_hours == 0.1
    assert incoming.matches("vn.gov.thanhhoa.health.document.incoming_registered", {"processed_on_system": True})
    assert not incoming.matches("vn.gov.thanhhoa.health.document.incoming_registered", {"processed_on_system": False})
    assert not incoming.matches("vn.gov.thanhhoa.health.document.incoming_registered", {"processed_on_system": 1})
    assert online.matches("vn.gov.thanhhoa.education.dossier.received", {"channel": "online"})
    assert not online.matches("vn.gov.thanhhoa.education.dossier.resolved", {"channel": "online"})
    with pytest.raises(ValueError):
        load_rules(load_registry(), silence_periods={"nope": 1.0})


# -- notifications ---------------------------------------------------------------------------


def test_signature_covers_the_raw_body() -> None:
    row = {
        "id": 7,
        "kind": "silence",
        "rule_id": "silence.incoming_on_system",
        "unit_code": "400",
        "sector": None,
        "kpi": None,
        "family": "incoming_on_system",
        "state": "open",
        "opened_at": at("2025-05-05 10:00"),
        "acknowledged_at": None,
        "acknowledged_by": None,
        "closed_at": None,
        "details": {"value": 2.0},
    }
    body = payload(row, "opened", "alert-7-opened").encode()  # type: ignore[arg-type]
    assert json.loads(body)["alert"]["unit"] == "400"
    header = sign(body, "s3cret")
    assert header.startswith("sha256=") and verify(body, "s3cret", header)
    assert not verify(body + b" ", "s3cret", header) and not verify(body, "other", header)


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff_s(n, 1.0, 30.0) for n in range(1, 8)]
    assert 0.9 <= delays[0] <= 1.1 and 1.8 <= delays[1] <= 2.2 and 27 <= delays[-1] <= 33
