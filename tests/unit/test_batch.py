"""Batches (services/aggregator/domain/batch.py) and their fold into counters and entity
states (services/aggregator/domain/fold.py)."""

import datetime as dt
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.migrate import reference_registry
from schemas.events import EVENT_SPECS, usage
from schemas.events import dossiers as dev
from schemas.events import projects as pev
from services.aggregator.domain.batch import Batch, BatchState
from services.aggregator.domain.decode import Decoded, Poison, Record, event_key
from services.aggregator.domain.fold import Effects, expand, fold, registry_lineage
from services.core.calendar import day_of_hour as local_day
from services.core.kpis import dossiers as dossier_domain

REGISTRY = reference_registry()
LINEAGE = registry_lineage(REGISTRY)


def aggregate(events, dossiers, projects, lineage):
    return fold(events, {"dossiers": dossiers, "projects": projects}, lineage)


T0 = dt.datetime(2025, 5, 4, 17, 30, tzinfo=dt.UTC)  # 2025-05-05 00:30 in Vietnam
H = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def hour(t: dt.datetime) -> int:
    return int(t.timestamp()) // 3600


_offset = iter(range(10**9))


def event(
    data,
    at: dt.datetime,
    *,
    unit="390",
    sector=None,
    id_=None,
    source="/src",
    topic="health.events",
    partition=0,
    offset=None,
) -> Decoded:
    model = type(data)
    sector = sector or (model.SECTORS[0] if model.SECTORS else "health")
    type_ = f"vn.gov.thanhhoa.{sector}.{model.ENTITY}.{model.VERB}"
    spec = EVENT_SPECS[type_]
    off = next(_offset) if offset is None else offset
    id_ = id_ or f"id-{off}"
    rec = Record(topic, partition, off, unit.encode(), b"{}", [])
    return Decoded(rec, event_key(source, id_), id_, source, spec, data, unit, at, hour(at))


def fare(payment="card"):
    return usage.FareTapped(route_id="R01", payment=payment)


def received(did="D1", due=T0 + 10 * DAY, channel="online"):
    return dev.DossierReceived(dossier_id=did, procedure_code="P1", channel=channel, due_at=due, fee_required=False)


def resolved(did="D1"):
    return dev.DossierResolved(dossier_id=did, e_result=True)


# --- Batch -------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_empty_batch_never_flushes():
    clock = FakeClock()
    batch = Batch(max_records=1, max_age_s=0.0, clock=clock)
    clock.now += 1000
    assert batch.should_flush() is False


def test_flushes_by_size():
    clock = FakeClock()
    batch = Batch(max_records=3, max_age_s=60, clock=clock)
    for i in range(2):
        batch.add(event(fare(), T0, offset=i))
        assert batch.should_flush() is False
    batch.add(event(fare(), T0, offset=2))
    assert batch.should_flush() is True
    assert batch.size == 3


def test_flushes_by_age_measured_from_the_first_record():
    clock = FakeClock()
    batch = Batch(max_records=1000, max_age_s=5.0, clock=clock)
    clock.now = 200.0
    batch.add(event(fare(), T0, offset=0))
    clock.now = 204.0
    batch.add(event(fare(), T0, offset=1))
    assert batch.should_flush() is False
    clock.now = 204.999
    assert batch.should_flush() is False
    clock.now = 205.0
    assert batch.should_flush() is True


def test_next_offsets_are_last_offset_plus_one_per_partition_including_poison():
    batch = Batch(max_records=100, max_age_s=60, clock=FakeClock())
    batch.add(event(fare(), T0, partition=0, offset=10))
    batch.add(event(fare(), T0, partition=1, offset=5))
    batch.add(Poison(Record("health.events", 0, 11, None, None, None), "bad"))
    batch.add(event(fare(), T0, topic="culture.events", partition=0, offset=7))
    assert batch.next_offsets == {("health.events", 0): 12, ("health.events", 1): 6, ("culture.events", 0): 8}
    assert len(batch.events) == 3 and len(batch.poison) == 1 and batch.size == 4


def test_adding_to_a_sealed_batch_raises():
    batch = Batch(max_records=10, max_age_s=1, clock=FakeClock())
    assert batch.seal() is batch and batch.state is BatchState.SEALED
    with pytest.raises(RuntimeError):
        batch.add(event(fare(), T0))
    assert batch.size == 0


def test_unique_new_drops_seen_keys_and_repeats_keeping_the_first():
    batch = Batch(max_records=100, max_age_s=60, clock=FakeClock())
    a1 = event(fare("card"), T0, id_="a", offset=1)
    b = event(fare("cash"), T0, id_="b", offset=2)
    a2 = event(fare("qr"), T0, id_="a", offset=3)  # same (source, id) as a1: a redelivery
    c = event(fare("qr"), T0, id_="c", offset=4)
    c2 = event(fare("qr"), T0, id_="c", offset=5)
    for e in (a1, b, a2, c, c2):
        batch.add(e)
    assert batch.unique_new(set()) == [a1, b, c]
    assert batch.unique_new({b.event_key}) == [a1, c]
    seen = {b.event_key}
    batch.unique_new(seen)
    assert seen == {b.event_key}  # the caller's set is not modified


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=20), st.sets(st.integers(0, 5)))
def test_unique_new_law(ids, seen_ids):
    batch = Batch(max_records=100, max_age_s=60, clock=FakeClock())
    for i, n in enumerate(ids):
        batch.add(event(fare(), T0, id_=f"e{n}", offset=i))
    out = batch.unique_new({event_key("/src", f"e{n}") for n in seen_ids})
    expected = [n for i, n in enumerate(ids) if n not in seen_ids and n not in ids[:i]]
    assert [e.id for e in out] == [f"e{n}" for n in expected]
    assert [e.record.offset for e in out] == [ids.index(n) for n in expected]  # first occurrence kept


# --- aggregate: grains and lineage --------------------------------------------------------------


def test_local_day_uses_utc_plus_seven():
    assert local_day(hour(dt.datetime(2025, 5, 4, 16, 59, tzinfo=dt.UTC))) == dt.date(2025, 5, 4)
    assert local_day(hour(dt.datetime(2025, 5, 4, 17, 0, tzinfo=dt.UTC))) == dt.date(2025, 5, 5)
    assert local_day(hour(dt.datetime(1970, 1, 1, 0, tzinfo=dt.UTC))) == dt.date(1970, 1, 1)
    assert local_day(hour(dt.datetime(1969, 12, 31, 16, tzinfo=dt.UTC))) == dt.date(1969, 12, 31)


def test_stateless_event_expands_to_ancestors_and_day_and_month():
    effects = aggregate([event(fare("card"), T0, unit="390", sector="transport")], {}, {}, LINEAGE)
    h = hour(T0)
    expected_hourly = {
        (u, m, "transport", h): 1 for u in ("390", "38") for m in ("fare.boardings", "fare.boardings.cashless")
    }
    assert effects.hourly == expected_hourly
    day = dt.date(2025, 5, 5)  # 17:30Z is already the next local day
    assert effects.daily == {(u, m, s, day): v for (u, m, s, _), v in expected_hourly.items()}
    assert effects.monthly == {(u, m, s, dt.date(2025, 5, 1)): v for (u, m, s, _), v in expected_hourly.items()}
    # announced for the unit and its ancestors, so their alerts are judged too
    assert effects.touched == {(u, "transport", m, h) for (u, m, _, _) in expected_hourly}


def test_local_month_boundary():
    at = dt.datetime(2025, 5, 31, 17, 0, tzinfo=dt.UTC)  # 2025-06-01 00:00 local
    effects = aggregate([event(fare(), at, unit="38", sector="transport")], {}, {}, LINEAGE)
    assert {k[3] for k in effects.monthly} == {dt.date(2025, 6, 1)}
    assert {k[3] for k in effects.daily} == {dt.date(2025, 6, 1)}


def test_zero_deltas_are_dropped():
    effects = aggregate([event(fare("cash"), T0, sector="transport")], {}, {}, LINEAGE)
    assert all(v != 0 for grain in (effects.hourly, effects.daily, effects.monthly) for v in grain.values())
    assert not any(k[1] == "fare.boardings.cashless" for k in effects.hourly)
    assert not any(t[2] == "fare.boardings.cashless" for t in effects.touched)


def test_hours_sum_into_days_and_days_into_months():
    events = [event(fare(), T0 + i * 5 * H, sector="transport", unit="391") for i in range(40)]
    effects = aggregate(events, {}, {}, LINEAGE)
    per_day: Counter = Counter()
    for (u, m, s, h), v in effects.hourly.items():
        per_day[(u, m, s, local_day(h))] += v
    assert dict(per_day) == effects.daily
    per_month: Counter = Counter()
    for (u, m, s, d), v in effects.daily.items():
        per_month[(u, m, s, d.replace(day=1))] += v
    assert dict(per_month) == effects.monthly
    assert effects.hourly[("38", "fare.boardings", "transport", hour(T0))] == 1


def test_aggregate_does_not_deduplicate():
    e = event(fare(), T0, sector="transport", id_="same")
    effects = aggregate([e, e], {}, {}, LINEAGE)
    assert effects.hourly[("390", "fare.boardings", "transport", hour(T0))] == 2


def test_expand_drops_deltas_that_cancel_in_an_ancestor():
    leaf = {("390", "health", 10, "m"): 1, ("391", "health", 10, "m"): -1, ("392", "health", 10, "z"): 0}
    effects = expand(leaf, LINEAGE)
    assert effects.hourly == {("390", "m", "health", 10): 1, ("391", "m", "health", 10): -1}
    assert ("38", "m", "health", 10) not in effects.hourly
    assert ("38", "m", "health", local_day(10)) not in effects.daily
    assert effects.touched == {("390", "health", "m", 10), ("391", "health", "m", 10)}


def test_expand_of_an_unknown_unit_keeps_no_rows_but_marks_it_touched():
    effects = expand({("nope", "health", 10, "m"): 3}, LINEAGE)
    assert effects.hourly == {} and effects.touched == {("nope", "health", "m", 10)}


# --- aggregate: dossiers and projects ------------------------------------------------------------


def test_dossier_counts_in_its_reception_hour_and_returns_its_state():
    resolve_at = T0 + 3 * DAY
    effects = aggregate([event(received(), T0), event(resolved(), resolve_at)], {}, {}, LINEAGE)
    h = hour(T0)
    assert effects.hourly[("390", "dossier.received", "health", h)] == 1
    assert effects.hourly[("390", "dossier.resolved_on_time", "health", h)] == 1
    assert effects.hourly[("38", "dossier.resolved", "health", h)] == 1
    assert {k[3] for k in effects.hourly} == {h}
    assert set(effects.dossiers) == {"D1"}
    assert effects.dossiers["D1"].resolved_at == resolve_at


def test_dossier_received_in_a_previous_batch_and_resolved_now():
    first = aggregate([event(received(), T0)], {}, {}, LINEAGE)
    state = first.dossiers["D1"]
    second = aggregate([event(resolved(), T0 + 2 * DAY)], {"D1": state}, {}, LINEAGE)
    h = hour(T0)
    assert ("390", "dossier.received", "health", h) not in second.hourly  # unchanged → no delta
    assert second.hourly[("390", "dossier.resolved", "health", h)] == 1
    assert second.hourly[("390", "dossier.resolved_on_time", "health", h)] == 1
    assert second.hourly[("390", "dossier.processing_seconds", "health", h)] == 2 * 86400
    assert second.daily[("38", "dossier.resolved", "health", dt.date(2025, 5, 5))] == 1
    assert all(v > 0 for v in second.hourly.values())


def test_late_resolution_moves_nothing_but_adds_late():
    state = aggregate([event(received(due=T0 + DAY), T0)], {}, {}, LINEAGE).dossiers["D1"]
    effects = aggregate([event(resolved(), T0 + 2 * DAY)], {"D1": state}, {}, LINEAGE)
    keys = {k[1] for k in effects.hourly if k[0] == "390"}
    assert "dossier.resolved_late" in keys and "dossier.resolved_on_time" not in keys


def test_projects_are_returned_as_states_without_counters():
    ev = pev.ProjectStageChanged(project_id="P1", stage="design", title="T")
    effects = aggregate([event(ev, T0, unit="38")], {}, {}, LINEAGE)
    assert effects.hourly == {} and effects.daily == {} and effects.monthly == {}
    assert effects.projects["P1"].stage == "design" and effects.projects["P1"].unit_code == "38"
    assert effects.dossiers == {}


def test_unchanged_entities_are_not_returned():
    other = dossier_domain.new_state("D9", "health", "390")
    effects = aggregate([event(fare(), T0, sector="transport")], {"D9": other}, {}, LINEAGE)
    assert effects.dossiers == {} and effects.projects == {}


# --- the batch-splitting law ---------------------------------------------------------------------

DIDS = ("D1", "D2")
minutes = st.integers(0, 60 * 24 * 20)
dossier_data = st.sampled_from(DIDS).flatmap(
    lambda did: st.one_of(
        st.builds(
            lambda due, ch: received(did, T0 + dt.timedelta(minutes=due), ch),
            minutes,
            st.sampled_from(["online", "counter"]),
        ),
        st.just(dev.DossierSupplementRequested(dossier_id=did)),
        st.just(dev.DossierSupplementResumed(dossier_id=did)),
        st.builds(lambda e: dev.DossierResolved(dossier_id=did, e_result=e), st.booleans()),
        st.builds(lambda s: dev.DossierRated(dossier_id=did, satisfied=s), st.booleans()),
    )
)
any_event = st.one_of(
    st.tuples(dossier_data, minutes, st.sampled_from(["390", "391"]), st.just("health")),
    st.tuples(
        st.builds(fare, st.sampled_from(["cash", "card"])),
        minutes,
        st.sampled_from(["390", "38"]),
        st.just("transport"),
    ),
    st.tuples(
        st.builds(lambda s: pev.ProjectStageChanged(project_id="P1", stage=s), st.sampled_from(pev.PROJECT_STAGES)),
        minutes,
        st.just("38"),
        st.just("culture"),
    ),
)


def add(total: Counter, effects: Effects) -> None:
    for grain in ("hourly", "daily", "monthly"):
        for k, v in getattr(effects, grain).items():
            total[(grain, *k)] += v


def nonzero(c: Counter) -> dict:
    return {k: v for k, v in c.items() if v}


@settings(max_examples=150, deadline=None)
@given(st.lists(any_event, max_size=14), st.data())
def test_splitting_a_batch_in_two_gives_the_same_counters_and_states(items, data):
    events = [event(d, T0 + dt.timedelta(minutes=m), unit=u, sector=s) for d, m, u, s in items]
    cut = data.draw(st.integers(0, len(events)))
    whole = aggregate(events, {}, {}, LINEAGE)
    first = aggregate(events[:cut], {}, {}, LINEAGE)
    second = aggregate(events[cut:], dict(first.dossiers), dict(first.projects), LINEAGE)
    total: Counter = Counter()
    add(total, first)
    add(total, second)
    one: Counter = Counter()
    add(one, whole)
    assert nonzero(total) == nonzero(one)
    assert {**first.dossiers, **second.dossiers} == whole.dossiers
    assert {**first.projects, **second.projects} == whole.projects


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(dossier_data.filter(lambda d: d.dossier_id == "D1"), minutes), max_size=10))
def test_a_dossier_nets_to_the_contribution_of_its_final_state(items):
    events = [event(d, T0 + dt.timedelta(minutes=m), unit="390") for d, m in items]
    effects = aggregate(events, {}, {}, LINEAGE)
    final = effects.dossiers.get("D1")
    want = {k: v for k, v in dossier_domain.contribution(final).items() if v}
    h = dossier_domain.hour_of(final)
    for unit in ("390", "38"):
        got = {k[1]: v for k, v in effects.hourly.items() if k[0] == unit}
        assert got == want
        assert all(k[3] == h for k in effects.hourly)
