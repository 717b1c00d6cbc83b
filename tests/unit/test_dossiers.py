"""Dossier state machine and counter contributions (services/aggregator/domain/dossiers.py).

Domain rules under test: a dossier counts in the hour it was received; it is on time when
resolved by due_at + time paused for supplements with at most one supplement request; more
than one request is late; ``overdue_at`` stops the clock while paused; the processing
histogram is cumulative.
"""

import datetime as dt
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import dossiers as ev
from schemas.events.documents import IncomingDocumentRegistered
from schemas.metrics import METRICS, PROCESSING_HOURS_BUCKETS
from services.core.kpis.dossiers import (
    DossierState,
    apply,
    contribution,
    hour_of,
    new_state,
)

T0 = dt.datetime(2025, 5, 5, 1, 30, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
H = dt.timedelta(hours=1)
S = dt.timedelta(seconds=1)
DID = "000.00.28.H56-250505-0001"
SECTOR, UNIT = "health", "390"


def received(due: dt.datetime, *, channel="online", fee=True, digitised=False, reused=False):
    return ev.DossierReceived(
        dossier_id=DID,
        procedure_code="1.001",
        channel=channel,
        due_at=due,
        fee_required=fee,
        digitised=digitised,
        reused_data=reused,
    )


REQUESTED = ev.DossierSupplementRequested(dossier_id=DID)
RESUMED = ev.DossierSupplementResumed(dossier_id=DID)


def resolved(e_result=True):
    return ev.DossierResolved(dossier_id=DID, e_result=e_result)


def run(steps, state: DossierState | None = None) -> DossierState:
    state = state or new_state(DID, SECTOR, UNIT)
    for data, at in steps:
        state = apply(state, data, at, SECTOR, UNIT)
    return state


def delta(before: dict[str, int], after: dict[str, int]) -> Counter:
    out: Counter = Counter()
    for k in set(before) | set(after):
        d = after.get(k, 0) - before.get(k, 0)
        if d:
            out[k] = d
    return out


# --- on-time rule --------------------------------------------------------------------------


def test_resolved_exactly_at_due_is_on_time_and_one_second_later_is_late():
    due = T0 + 3 * DAY
    on_time = run([(received(due), T0), (resolved(), due)])
    late = run([(received(due), T0), (resolved(), due + S)])
    assert on_time.resolved_on_time() is True
    assert late.resolved_on_time() is False
    c_on, c_late = contribution(on_time), contribution(late)
    assert c_on["dossier.resolved_on_time"] == 1 and "dossier.resolved_late" not in c_on
    assert c_late["dossier.resolved_late"] == 1 and "dossier.resolved_on_time" not in c_late
    assert c_on["dossier.resolved"] == c_late["dossier.resolved"] == 1


def test_time_waiting_for_a_supplement_extends_the_due_time():
    due = T0 + 3 * DAY
    pause = 2 * DAY
    base = [(received(due), T0), (REQUESTED, T0 + DAY), (RESUMED, T0 + DAY + pause)]
    assert run([*base, (resolved(), due + pause)]).resolved_on_time() is True
    assert run([*base, (resolved(), due + pause + S)]).resolved_on_time() is False
    state = run([*base, (resolved(), due + pause)])
    assert state.paused_seconds == pause.total_seconds()
    assert state.effective_due() == due + pause


def test_more_than_one_supplement_request_is_late_even_when_early():
    due = T0 + 10 * DAY
    steps = [
        (received(due), T0),
        (REQUESTED, T0 + H),
        (RESUMED, T0 + 2 * H),
        (REQUESTED, T0 + 3 * H),
        (RESUMED, T0 + 4 * H),
        (resolved(), T0 + 5 * H),
    ]
    state = run(steps)
    assert state.supplement_count == 2
    assert state.resolved_on_time() is False
    assert contribution(state)["dossier.resolved_late"] == 1


def test_exactly_one_supplement_request_can_still_be_on_time():
    due = T0 + 10 * DAY
    state = run([(received(due), T0), (REQUESTED, T0 + H), (RESUMED, T0 + 2 * H), (resolved(), T0 + 5 * H)])
    assert state.supplement_count == 1
    assert state.resolved_on_time() is True


def test_processing_time_excludes_the_pause():
    due = T0 + 10 * DAY
    state = run([(received(due), T0), (REQUESTED, T0 + H), (RESUMED, T0 + 25 * H), (resolved(), T0 + 30 * H)])
    assert state.processing_seconds() == 6 * 3600
    assert contribution(state)["dossier.processing_seconds"] == 6 * 3600


def test_resume_without_an_open_pause_excludes_nothing():
    due = T0 + DAY
    state = run([(received(due), T0), (RESUMED, T0 + H), (resolved(), due + S)])
    assert state.paused_seconds == 0
    assert state.resolved_on_time() is False


def test_resolving_during_an_open_pause_excludes_the_waiting_time():
    """Not overdue a second before resolution (the clock stood still) must not turn into
    "late" at resolution. (Failed at 2735b5a, where DossierResolved dropped the open pause;
    fixed in 5de1fd3.)"""
    due = T0 + 10 * DAY
    paused = run([(received(due), T0), (REQUESTED, T0 + 9 * DAY)])
    at = T0 + 12 * DAY  # 9 working days elapsed, 3 days waiting for the citizen
    assert paused.overdue_at(at - S) is False  # the clock stands still while paused
    done = apply(paused, resolved(), at, SECTOR, UNIT)
    assert done.resolved_on_time() is True
    assert done.processing_seconds() == 9 * 86400


def test_a_pause_timed_to_end_before_it_starts_excludes_nothing():
    """Sector systems' clocks disagree: a resolution or resume timed before the supplement
    request it ends counts as a zero-length pause, never a negative one that would add time."""
    due = T0 + 10 * DAY
    resolved_early = run([(received(due), T0), (REQUESTED, T0 + 2 * H), (resolved(), T0 + H)])
    assert resolved_early.paused_seconds == 0
    assert resolved_early.processing_seconds() == 3600
    resumed_early = run([(received(due), T0), (REQUESTED, T0 + 2 * H), (RESUMED, T0 + H), (resolved(), T0 + 3 * H)])
    assert resumed_early.paused_seconds == 0
    assert resumed_early.processing_seconds() == 3 * 3600


# --- overdue_at ------------------------------------------------------------------------------


def test_open_dossier_is_overdue_only_after_its_due_time():
    due = T0 + 3 * DAY
    state = run([(received(due), T0)])
    assert state.overdue_at(due) is False
    assert state.overdue_at(due + S) is True


def test_clock_stands_still_during_a_pause():
    due = T0 + 3 * DAY
    paused = run([(received(due), T0), (REQUESTED, T0 + DAY)])
    # still waiting for the citizen long after the nominal due time: not overdue
    assert paused.overdue_at(due + 30 * DAY) is False
    resumed = apply(paused, RESUMED, T0 + 2 * DAY, SECTOR, UNIT)  # paused 1 day
    assert resumed.overdue_at(due + DAY) is False
    assert resumed.overdue_at(due + DAY + S) is True


def test_a_pause_timed_after_now_does_not_bring_the_due_time_forward():
    due = T0 + 3 * DAY
    state = run([(received(due), T0), (REQUESTED, due + H)])  # request timed in the future
    assert state.overdue_at(due) is False
    assert state.overdue_at(due + S) is True


def test_second_supplement_request_makes_an_open_dossier_overdue_immediately():
    due = T0 + 30 * DAY
    state = run([(received(due), T0), (REQUESTED, T0 + H), (RESUMED, T0 + 2 * H), (REQUESTED, T0 + 3 * H)])
    assert state.overdue_at(T0 + 4 * H) is True


def test_resolved_or_unreceived_dossiers_are_never_overdue():
    due = T0 + DAY
    done = run([(received(due), T0), (resolved(), due + 10 * DAY)])
    assert done.overdue_at(due + 100 * DAY) is False
    assert new_state(DID, SECTOR, UNIT).overdue_at(T0 + 1000 * DAY) is False


@settings(max_examples=150, deadline=None)
@given(
    due_h=st.integers(1, 400),
    pause=st.none() | st.tuples(st.integers(0, 300), st.integers(0, 300)),
    resolve_h=st.integers(0, 1200),
)
def test_overdue_agrees_with_resolution_when_no_pause_is_open(due_h, pause, resolve_h):
    """Resolving an open dossier (≤ 1 request, no open pause) at t is on time iff it was
    not overdue at t."""
    steps = [(received(T0 + due_h * H), T0)]
    if pause is not None:
        start, length = pause
        steps += [(REQUESTED, T0 + start * H), (RESUMED, T0 + (start + length) * H)]
    state = run(steps)
    at = T0 + resolve_h * H
    done = apply(state, resolved(), at, SECTOR, UNIT)
    assert done.resolved_on_time() is (not state.overdue_at(at))


# --- contribution ------------------------------------------------------------------------------


def test_nothing_counts_before_the_dossier_is_received():
    state = run(
        [
            (REQUESTED, T0),
            (resolved(), T0 + H),
            (ev.DossierPaid(dossier_id=DID, online=True), T0 + H),
            (ev.DossierRated(dossier_id=DID, satisfied=False), T0 + 2 * H),
        ]
    )
    assert contribution(state) == {}
    assert contribution(None) == {}
    assert hour_of(state) is None and hour_of(None) is None


def test_contribution_of_a_received_dossier():
    state = run([(received(T0 + DAY, channel="online", fee=True, digitised=True, reused=True), T0)])
    assert contribution(state) == {
        "dossier.received": 1,
        "dossier.received.online": 1,
        "dossier.fee_required": 1,
        "dossier.digitised": 1,
        "dossier.data_reused": 1,
    }
    counter = run([(received(T0 + DAY, channel="counter", fee=False), T0)])
    assert contribution(counter) == {"dossier.received": 1}


def test_online_payment_counts_only_for_dossiers_with_a_fee():
    paid = ev.DossierPaid(dossier_id=DID, online=True)
    with_fee = run([(received(T0 + DAY, fee=True), T0), (paid, T0 + H)])
    without_fee = run([(received(T0 + DAY, fee=False), T0), (paid, T0 + H)])
    assert contribution(with_fee)["dossier.paid_online"] == 1
    assert "dossier.paid_online" not in contribution(without_fee)
    # a later offline payment does not undo an online one
    again = apply(with_fee, ev.DossierPaid(dossier_id=DID, online=False), T0 + 2 * H, SECTOR, UNIT)
    assert contribution(again)["dossier.paid_online"] == 1


def test_rating_counts_and_unsatisfied_is_separate():
    base = run([(received(T0 + DAY), T0)])
    happy = apply(base, ev.DossierRated(dossier_id=DID, satisfied=True), T0 + H, SECTOR, UNIT)
    sad = apply(base, ev.DossierRated(dossier_id=DID, satisfied=False), T0 + H, SECTOR, UNIT)
    assert contribution(happy)["dossier.rated"] == 1 and "dossier.rated_unsatisfied" not in contribution(happy)
    assert contribution(sad)["dossier.rated"] == 1 and contribution(sad)["dossier.rated_unsatisfied"] == 1


def test_e_result_counts_only_once_resolved():
    state = run([(received(T0 + DAY), T0), (resolved(e_result=True), T0 + H)])
    assert contribution(state)["dossier.e_result"] == 1
    no = run([(received(T0 + DAY), T0), (resolved(e_result=False), T0 + H)])
    assert "dossier.e_result" not in contribution(no)


@pytest.mark.parametrize("hours", PROCESSING_HOURS_BUCKETS)
def test_histogram_bucket_boundaries_are_inclusive(hours):
    exact = run([(received(T0 + 60 * DAY), T0), (resolved(), T0 + hours * H)])
    over = run([(received(T0 + 60 * DAY), T0), (resolved(), T0 + hours * H + S)])
    assert contribution(exact)[f"dossier.processing_le_{hours}h"] == 1
    assert f"dossier.processing_le_{hours}h" not in contribution(over)


def test_hour_of_is_the_reception_hour_not_the_resolution_hour():
    at = dt.datetime(2025, 5, 4, 17, 30, tzinfo=dt.UTC)
    state = run([(received(at + DAY), at), (resolved(), at + 5 * DAY)])
    assert hour_of(state) == int(dt.datetime(2025, 5, 4, 17, tzinfo=dt.UTC).timestamp()) // 3600


def test_apply_rejects_an_event_of_another_family():
    other = IncomingDocumentRegistered(document_id="D1", received_electronically=True, processed_on_system=True)
    with pytest.raises(TypeError):
        apply(new_state(DID, SECTOR, UNIT), other, T0, SECTOR, UNIT)


def test_receiving_again_is_idempotent():
    state = run([(received(T0 + DAY), T0)])
    assert contribution(apply(state, received(T0 + DAY), T0, SECTOR, UNIT)) == contribution(state)


# --- laws over arbitrary event sequences --------------------------------------------------------

offsets = st.integers(0, 40 * 24 * 3600)
dossier_event = st.one_of(
    st.builds(
        lambda due, ch, fee, dg, ru: received(
            T0 + dt.timedelta(seconds=due), channel=ch, fee=fee, digitised=dg, reused=ru
        ),
        offsets,
        st.sampled_from(["online", "counter", "post"]),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    st.just(REQUESTED),
    st.just(RESUMED),
    st.builds(resolved, st.booleans()),
    st.builds(lambda o: ev.DossierPaid(dossier_id=DID, online=o), st.booleans()),
    st.builds(lambda s: ev.DossierRated(dossier_id=DID, satisfied=s), st.booleans()),
)
sequences = st.lists(st.tuples(dossier_event, offsets.map(lambda s: T0 + dt.timedelta(seconds=s))), max_size=12)


def check_invariants(c: dict[str, int]) -> None:
    assert set(c) <= set(METRICS)
    assert all(v >= 0 for v in c.values())
    resolved_n = c.get("dossier.resolved", 0)
    assert c.get("dossier.resolved_on_time", 0) + c.get("dossier.resolved_late", 0) == resolved_n
    previous = 0
    for hours in PROCESSING_HOURS_BUCKETS:
        now = c.get(f"dossier.processing_le_{hours}h", 0)
        assert previous <= now <= resolved_n
        previous = now
    assert c.get("dossier.received.online", 0) <= c.get("dossier.received", 0)
    assert c.get("dossier.paid_online", 0) <= c.get("dossier.fee_required", 0)
    assert c.get("dossier.rated_unsatisfied", 0) <= c.get("dossier.rated", 0)
    assert c.get("dossier.e_result", 0) <= resolved_n


@settings(max_examples=300, deadline=None)
@given(sequences)
def test_deltas_telescope_to_the_final_contribution(steps):
    state = new_state(DID, SECTOR, UNIT)
    total: Counter = Counter()
    for data, at in steps:
        after = apply(state, data, at, SECTOR, UNIT)
        total.update(delta(contribution(state), contribution(after)))
        check_invariants(contribution(after))
        state = after
    assert {k: v for k, v in total.items() if v} == {k: v for k, v in contribution(state).items() if v}


@settings(max_examples=200, deadline=None)
@given(sequences)
def test_processing_seconds_never_negative_and_pauses_not_negative(steps):
    state = run(steps)
    assert state.paused_seconds >= 0
    seconds = state.processing_seconds()
    assert seconds is None or seconds >= 0


# --- no due time, withdrawal, and Thanh Hóa's date rule ----------------------------------------


def test_a_dossier_without_a_due_time_is_on_time_and_never_overdue_by_time():
    state = run([(received(None), T0)])
    assert not state.overdue_at(T0 + 400 * DAY)
    done = run([(resolved(), T0 + 90 * DAY)], state)
    assert done.resolved_on_time() and done.resolved_on_time_by_date()


def test_without_a_due_time_two_supplement_requests_still_make_it_late_and_overdue():
    state = run([(received(None), T0), (REQUESTED, T0 + DAY), (RESUMED, T0 + 2 * DAY), (REQUESTED, T0 + 3 * DAY)])
    assert state.overdue_at(T0 + 3 * DAY + S)
    assert run([(resolved(), T0 + 4 * DAY)], state).resolved_on_time() is False


@pytest.mark.parametrize("reason", ["withdrawn", "stopped"])
def test_a_withdrawn_dossier_leaves_processing_and_counts_as_withdrawn(reason):
    state = run([(received(T0 + DAY), T0), (ev.DossierWithdrawn(dossier_id=DID, reason=reason), T0 + 5 * DAY)])
    assert not state.is_open and not state.overdue_at(T0 + 9 * DAY)
    assert state.withdrawal_reason == reason
    counts = contribution(state)
    assert counts["dossier.withdrawn"] == 1 and counts["dossier.received"] == 1
    assert "dossier.resolved" not in counts


def test_a_resolution_counts_over_a_withdrawal_of_a_resolved_dossier():
    withdrawn = ev.DossierWithdrawn(dossier_id=DID)
    state = run([(received(T0 + DAY), T0), (resolved(), T0 + 2 * H), (withdrawn, T0 + 3 * H)])
    counts = contribution(state)
    assert counts["dossier.resolved"] == 1 and "dossier.withdrawn" not in counts


def test_the_date_rule_is_on_time_on_the_due_date_even_after_the_due_time():
    due = dt.datetime(2025, 5, 9, 10, tzinfo=dt.UTC)  # 17:00 local on 9 May
    late_same_day = dt.datetime(2025, 5, 9, 15, tzinfo=dt.UTC)  # 22:00 local, same local date
    state = run([(received(due), T0), (resolved(), late_same_day)])
    assert state.resolved_on_time() is False and state.resolved_on_time_by_date() is True
    counts = contribution(state)
    assert counts["dossier.resolved_late"] == 1 and counts["dossier.resolved_on_time_by_date"] == 1
    next_day = run([(received(due), T0), (resolved(), dt.datetime(2025, 5, 9, 17, 1, tzinfo=dt.UTC))])
    assert next_day.resolved_on_time_by_date() is False  # 00:01 local on 10 May


def test_the_date_rule_ignores_the_number_of_supplement_requests():
    due = T0 + 10 * DAY
    steps = [(received(due), T0), (REQUESTED, T0 + DAY), (RESUMED, T0 + 2 * DAY)]
    steps += [(REQUESTED, T0 + 3 * DAY), (RESUMED, T0 + 4 * DAY), (resolved(), T0 + 5 * DAY)]
    state = run(steps)
    assert state.resolved_on_time() is False and state.resolved_on_time_by_date() is True
