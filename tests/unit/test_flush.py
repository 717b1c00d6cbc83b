"""The aggregator's flush sequence (services/aggregator/flush.py) against in-memory fakes of
its ports (tests/support/aggregator_fakes.py): order of steps, atomicity, lost claims,
poison, and where reading resumes after a batch that did not commit.

The same behaviour is tested against the real broker and PostgreSQL in
tests/integration/test_aggregator_*.py; these run in milliseconds and name the rule.
"""

import datetime as dt

import pytest

from infra.migrate import reference_registry
from schemas.events import EVENT_SPECS, usage
from schemas.events import dossiers as dev
from services.aggregator.domain.batch import Batch
from services.aggregator.domain.claims import positions_after_commit, positions_after_failure
from services.aggregator.domain.decode import Decoded, Poison, Record, event_key
from services.aggregator.domain.fold import registry_lineage
from services.aggregator.flush import Flusher, Outcome
from tests.support.aggregator_fakes import FakeDeadLetters, FakeStore, FakeUpdates

REGISTRY = reference_registry()
T0 = dt.datetime(2025, 5, 5, 2, tzinfo=dt.UTC)
HEALTH = ("events.health", 0)
TRANSPORT = ("events.transport", 3)


def decoded(data, tp=TRANSPORT, offset=0, id_=None, unit="390") -> Decoded:
    model = type(data)
    sector = model.SECTORS[0] if model.SECTORS else tp[0].split(".")[1]
    spec = EVENT_SPECS[f"vn.gov.thanhhoa.{sector}.{model.ENTITY}.{model.VERB}"]
    id_ = id_ or f"{tp[0]}-{offset}"
    record = Record(tp[0], tp[1], offset, unit.encode(), b"{}", [])
    return Decoded(record, event_key("/src", id_), id_, "/src", spec, data, unit, T0, int(T0.timestamp()) // 3600)


def fare(offset: int, **kw) -> Decoded:
    return decoded(usage.FareTapped(route_id="R1", payment="card"), TRANSPORT, offset, **kw)


def batch_of(*items: Decoded | Poison) -> Batch:
    batch = Batch(1000, 60)
    for item in items:
        batch.add(item)
    return batch.seal()


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
def store(log) -> FakeStore:
    store = FakeStore(log)
    store.data.offsets = {TRANSPORT: (1, 0), HEALTH: (1, 0)}
    return store


@pytest.fixture
def parts(log, store):
    dead, updates = FakeDeadLetters(log), FakeUpdates(log)
    flusher = Flusher(
        counters=store,
        offsets=store,
        dead_letters=dead,
        updates=updates,
        lineage=registry_lineage(REGISTRY),
        today=lambda: T0.date(),
    )
    return flusher, dead, updates


POSITIONS = {TRANSPORT: (1, 0), HEALTH: (1, 0)}
BOARDINGS_390 = ("390", "fare.boardings", "transport", int(T0.timestamp()) // 3600)


async def test_a_batch_commits_counters_seen_keys_and_offsets_together(parts, store, log) -> None:
    flusher, _dead, updates = parts
    result = await flusher.flush(batch_of(fare(0), fare(1)), POSITIONS)
    assert result.outcome is Outcome.COMMITTED and result.new_events == 2
    assert store.data.offsets[TRANSPORT] == (1, 2)
    assert store.data.hourly[BOARDINGS_390] == 2
    assert len(store.data.seen) == 2
    assert log == ["begin", "advance_offsets", "record_seen", "load_states", "write", "commit", "kpi_updates"]
    assert {u.unit for u in updates.published} == {"390", "38"}  # the commune and its district


@pytest.mark.parametrize("step", ["advance_offsets", "record_seen", "load_states", "write"])
async def test_a_batch_that_fails_anywhere_in_its_transaction_changes_nothing(parts, store, step) -> None:
    flusher, _dead, updates = parts
    store.fail_on = step
    result = await flusher.flush(batch_of(fare(0), fare(1)), POSITIONS)
    assert result.outcome is Outcome.FAILED and step in result.reason
    assert store.data.offsets[TRANSPORT] == (1, 0)  # the offset did not move without the counters
    assert not store.data.hourly and not store.data.seen
    assert updates.published == []


async def test_offsets_advance_inside_the_batch_transaction_before_its_other_work(parts, store, log) -> None:
    flusher, *_ = parts
    await flusher.flush(batch_of(fare(0)), POSITIONS)
    inside = log[log.index("begin") + 1 : log.index("commit")]
    assert inside[0] == "advance_offsets" and "write" in inside


async def test_a_claim_lost_to_another_consumer_drops_the_batch(parts, store, log) -> None:
    flusher, _dead, updates = parts
    store.data.offsets[TRANSPORT] = (2, 0)  # another consumer claimed the partition
    result = await flusher.flush(batch_of(fare(0)), POSITIONS)
    assert result.outcome is Outcome.STALE
    assert store.commits == 0 and not store.data.hourly and not store.data.seen
    assert updates.published == []


async def test_a_partition_no_longer_assigned_is_stale_before_any_work(parts, store, log) -> None:
    flusher, *_ = parts
    result = await flusher.flush(batch_of(fare(0)), {HEALTH: (1, 0)})
    assert result.outcome is Outcome.STALE and log == []


async def test_poison_is_copied_to_the_dead_letters_before_the_batch_commits(parts, store, log) -> None:
    flusher, dead, _updates = parts
    poison = Poison(Record(*TRANSPORT, 1, b"390", b"x", []), "unknown event type 'x'")
    result = await flusher.flush(batch_of(fare(0), poison, fare(2)), POSITIONS)
    assert result.committed
    assert log.index("dead_letters") < log.index("begin")
    assert dead.published == [poison]
    assert store.data.offsets[TRANSPORT] == (1, 3)  # past the poison: it is not read again
    assert store.data.hourly[BOARDINGS_390] == 2


async def test_poison_the_broker_did_not_take_stops_the_batch_before_its_transaction(parts, store, log) -> None:
    flusher, dead, _updates = parts
    dead.fail = True
    poison = Poison(Record(*TRANSPORT, 1, b"390", b"x", []), "bad")
    result = await flusher.flush(batch_of(fare(0), poison), POSITIONS)
    assert result.outcome is Outcome.FAILED
    assert "begin" not in log and store.data.offsets[TRANSPORT] == (1, 0)


async def test_an_event_counted_in_an_earlier_batch_counts_once(parts, store) -> None:
    flusher, *_ = parts
    await flusher.flush(batch_of(fare(0, id_="same")), POSITIONS)
    result = await flusher.flush(batch_of(fare(1, id_="same"), fare(2)), {TRANSPORT: (1, 1), HEALTH: (1, 0)})
    assert (result.new_events, result.duplicates) == (1, 1)
    assert store.data.hourly[BOARDINGS_390] == 2


async def test_entity_state_is_read_from_the_store_and_written_back(parts, store) -> None:
    flusher, *_ = parts
    due = T0 + dt.timedelta(days=3)
    received = dev.DossierReceived(
        dossier_id="D1", procedure_code="P", channel="online", due_at=due, fee_required=False
    )
    await flusher.flush(batch_of(decoded(received, HEALTH, 0)), POSITIONS)
    resolved = dev.DossierResolved(dossier_id="D1", e_result=True)
    await flusher.flush(batch_of(decoded(resolved, HEALTH, 1)), {TRANSPORT: (1, 0), HEALTH: (1, 1)})
    state = store.data.states["dossiers"]["D1"]
    assert state.received_at == T0 and state.resolved_at == T0
    hour = int(T0.timestamp()) // 3600
    assert store.data.hourly[("390", "dossier.received", "health", hour)] == 1
    assert store.data.hourly[("390", "dossier.resolved_on_time", "health", hour)] == 1


async def test_without_kpi_updates_nothing_is_published_after_the_commit(log, store) -> None:
    flusher = Flusher(store, store, FakeDeadLetters(log), None, registry_lineage(REGISTRY), lambda: T0.date())
    assert (await flusher.flush(batch_of(fare(0)), POSITIONS)).committed
    assert log[-1] == "commit"


# -- where reading resumes after a batch that did not commit -------------------------------------


async def test_reading_resumes_at_the_stored_offsets_not_the_ones_in_memory(parts, store) -> None:
    flusher, *_ = parts
    store.data.offsets[TRANSPORT] = (1, 7)  # a commit whose acknowledgement was lost did happen
    positions, moved = await flusher.positions_to_resume({TRANSPORT: (1, 5), HEALTH: (1, 0)})
    assert positions == {TRANSPORT: (1, 7), HEALTH: (1, 0)} and moved == [TRANSPORT]


async def test_a_partition_claimed_meanwhile_is_dropped_on_resume(parts, store) -> None:
    flusher, *_ = parts
    store.data.offsets[TRANSPORT] = (2, 5)
    positions, _moved = await flusher.positions_to_resume({TRANSPORT: (1, 5), HEALTH: (1, 0)})
    assert positions == {HEALTH: (1, 0)}


async def test_when_the_store_cannot_say_reading_resumes_from_memory(parts, store) -> None:
    flusher, *_ = parts
    store.fail_on = "stored_positions"
    positions, moved = await flusher.positions_to_resume({TRANSPORT: (1, 5)})
    assert positions == {TRANSPORT: (1, 5)} and moved == []


async def test_a_failed_batch_is_counted_once_when_read_again(parts, store) -> None:
    flusher, *_ = parts
    store.fail_on = "write"
    assert not (await flusher.flush(batch_of(fare(0), fare(1)), POSITIONS)).committed
    store.fail_on = None
    positions, _ = await flusher.positions_to_resume(POSITIONS)
    assert (await flusher.flush(batch_of(fare(0), fare(1)), positions)).committed
    assert store.data.hourly[BOARDINGS_390] == 2 and store.data.offsets[TRANSPORT] == (1, 2)


def test_positions_after_failure_keeps_partitions_the_store_does_not_know() -> None:
    positions, moved = positions_after_failure({TRANSPORT: (3, 9)}, {})
    assert positions == {TRANSPORT: (3, 9)} and moved == []


def test_a_commit_advances_the_positions_of_its_generation() -> None:
    positions = {TRANSPORT: (2, 100)}
    positions_after_commit(positions, {TRANSPORT: (2, 100, 250)})
    assert positions == {TRANSPORT: (2, 250)}


def test_a_commit_never_overwrites_a_newer_claim_of_the_same_partition() -> None:
    """The failure CI found on Apache Kafka: a batch of generation 2 commits while the read
    beside it re-claims the partition (generation 3, at the offset the claim read after that
    commit). Overwriting with generation 2 made the next batch stale and the resume drop the
    partition: it was never read again."""
    positions = {TRANSPORT: (3, 250)}
    positions_after_commit(positions, {TRANSPORT: (2, 100, 250), ("x.events.health", 0): (2, 0, 7)})
    assert positions == {TRANSPORT: (3, 250)}  # and a partition no longer owned stays absent
    resumed, _ = positions_after_failure(positions, {TRANSPORT: (3, 250)})
    assert resumed == {TRANSPORT: (3, 250)}
