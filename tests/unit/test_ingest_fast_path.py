"""The batch fast path must agree with the per-event reference path: the same events pass,
and they become the same Kafka records (the event time may be spelled differently)."""

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.migrate import reference_registry, reference_units
from schemas.envelope import batch_is_valid, validate_event
from schemas.sectors import Sector
from services.ingest.pipeline import Prepared, UnitChecks, prepare, prepare_valid_batch
from services.runtime.auth import Principal
from services.simulator.generator import SectorSystems

REGISTRY = reference_registry()
PRINCIPAL = Principal("k", "ingest", "t", sector="health")
EVENTS = [
    e
    for e in SectorSystems(
        reference_units(), dt.datetime(2025, 5, 5, tzinfo=dt.UTC), seed=5, events_per_hour=5000
    ).take(8000)
    if ".health." in e["type"]
][:400]


def normalised(outcome: Any) -> tuple[Any, ...]:
    assert isinstance(outcome, Prepared)
    headers = dict(outcome.message.headers)
    headers["ce_time"] = dt.datetime.fromisoformat(headers["ce_time"].decode())
    return outcome.index, outcome.id, outcome.message.key, outcome.message.value, headers


def test_valid_batches_take_the_fast_path_and_match_the_reference() -> None:
    assert batch_is_valid(json.dumps(EVENTS).encode(), Sector.HEALTH)
    fast = prepare_valid_batch(
        EVENTS, sector=Sector.HEALTH, checks=UnitChecks(REGISTRY), principal=PRINCIPAL, topic="t"
    )
    slow = prepare(EVENTS, sector=Sector.HEALTH, registry=REGISTRY, principal=PRINCIPAL, topic="t")
    assert [normalised(o) for o in fast] == [normalised(o) for o in slow]


def test_fast_path_defers_to_the_reference_for_unit_and_credential_refusals() -> None:
    limited = Principal("k", "ingest", "t", sector="health", units=frozenset({"390"}))
    late = {**EVENTS[0], "unit": "390", "time": "2025-07-02T09:00:00+07:00"}  # 390 ended on 2025-06-30
    other = {**EVENTS[1], "unit": "392"}
    batch = [late, other, {**EVENTS[2], "unit": "390"}]
    fast = prepare_valid_batch(batch, sector=Sector.HEALTH, checks=UnitChecks(REGISTRY), principal=limited, topic="t")
    slow = prepare(batch, sector=Sector.HEALTH, registry=REGISTRY, principal=limited, topic="t")
    assert [type(o).__name__ for o in fast] == ["Rejected", "Rejected", "Prepared"]
    assert [(getattr(o, "status", None), getattr(o, "errors", None)) for o in fast[:2]] == [
        (o.status, o.errors)
        for o in slow[:2]  # type: ignore[union-attr]
    ]


mutation = st.sampled_from(["data", "time", "unit", "type", "id", "extra", "specversion"])
values = st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.just({"emr": "yes"})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.integers(0, 19), mutation, values), max_size=3))
def test_a_batch_judged_valid_holds_only_events_the_reference_accepts(changes: list[Any]) -> None:
    batch = [dict(e) for e in EVENTS[:20]]
    for index, key, value in changes:
        batch[index][key] = value
    if batch_is_valid(json.dumps(batch).encode(), Sector.HEALTH):
        assert all(not isinstance(validate_event(e, Sector.HEALTH), list) for e in batch)
    elif not changes:
        raise AssertionError("an untouched valid batch was judged invalid")
