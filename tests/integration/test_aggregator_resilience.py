"""The aggregator's broker-reset rule and its handling of poison records, on a real broker.

Broker reset: when a partition's log starts again below the stored offset - the embedded
broker restarted empty, or a topic was deleted and recreated - the aggregator must read the
new log from its start rather than skip it as "already seen". The test recreates the topics
(which works on every broker) between two runs; the e2e stack test restarts the embedded
broker itself.
"""

import datetime as dt
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import pytest
from kafka.admin import KafkaAdminClient

from schemas.sectors import SECTORS
from schemas.topics import deadletter_topic, sector_topic
from services.simulator.encode import to_record
from tests.integration.test_aggregator_exactly_once import (
    REGISTRY,
    aggregator,
    assert_matches_ground_truth,
    simulate,
    wait_caught_up,
)
from tests.support.kafka import fill, new_prefix, produce_raw, provision, read_all
from tests.support.oracle import expected_counters, stored_counters
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


def recreate_topics(bootstrap: str, prefix: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.delete_topics([sector_topic(s, prefix) for s in SECTORS], timeout_ms=30_000)
    finally:
        admin.close()

    def gone() -> bool:
        probe = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
        try:
            return not any(sector_topic(s, prefix) in probe.list_topics() for s in SECTORS)
        finally:
            probe.close()

    deadline = dt.datetime.now() + dt.timedelta(seconds=60)
    while not gone():
        assert dt.datetime.now() < deadline, "topics were not deleted"
    provision(bootstrap, prefix)


async def test_recreated_topics_are_read_from_their_start(servers: Servers, dsn: str, workdir: Path) -> None:
    events = simulate(60_000, seed=21)
    before, after = events[:40_000], events[40_000:]  # after < before: new logs end below the stored offsets
    prefix = new_prefix()
    provision(servers.bootstrap, prefix)
    ends = fill(servers.bootstrap, prefix, before)
    process = aggregator(servers, dsn, prefix, workdir)
    process.start()
    await wait_caught_up(dsn, ends)
    process.stop()

    recreate_topics(servers.bootstrap, prefix)
    new_ends = fill(servers.bootstrap, prefix, after)
    assert sum(new_ends.values()) < sum(ends.values())
    process.start()
    await wait_caught_up(dsn, new_ends)
    process.stop()
    # every event of both logs counted exactly once: none skipped as "already seen"
    await assert_matches_ground_truth(dsn, events)
    assert "partition log was reset" in process.log_tail(400)


def poison_records(unit: str) -> list[tuple[str, tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]]:
    good = {
        "specversion": "1.0",
        "id": "p-0",
        "source": "/poison",
        "unit": unit,
        "time": "2025-05-05T09:00:00+07:00",
        "type": "vn.gov.thanhhoa.culture.library.loan_recorded",
        "data": {"format": "physical"},
    }
    key, value, headers = to_record(good)

    def with_header(name: str, new: bytes | None) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in headers if k != name] + ([(name, new)] if new is not None else [])

    return [
        ("missing CloudEvents headers", (key, value, [])),
        ("unknown event type", (key, value, with_header("ce_type", b"vn.gov.thanhhoa.culture.ghost.appeared"))),
        ("invalid data", (key, b"{not json", headers)),
        ("invalid data", (key, b'{"format": "papyrus"}', headers)),
        ("unknown administrative unit", (key, value, with_header("ce_unit", b"999"))),
        ("did not exist", (key, value, with_header("ce_time", b"2026-01-01T00:00:00+07:00"))),
    ]


async def test_poison_records_go_to_the_dead_letter_topic_and_the_partition_keeps_flowing(
    servers: Servers, dsn: str, workdir: Path
) -> None:
    prefix = new_prefix()
    provision(servers.bootstrap, prefix)
    topic = sector_topic("culture", prefix)
    culture = [e for e in simulate(80_000, seed=22) if e["type"].startswith("vn.gov.thanhhoa.culture.")]
    # the busiest commune whose code no unit uses in 2026 (the "did not exist" poison): its
    # events share one key, so one partition
    gone = {c for c in {e["unit"] for e in culture} if REGISTRY.get(c, dt.date(2026, 1, 1)) is None}
    unit = next(c for c, _n in Counter(e["unit"] for e in culture).most_common() if c in gone)
    valid = [e for e in culture if e["unit"] == unit]
    poison = poison_records(unit)
    assert len(valid) >= 3 * (len(poison) + 1)  # valid events before, between and after the poison
    # interleave: valid, poison, valid, poison … all in the one partition of the unit
    records = []
    chunk = len(valid) // (len(poison) + 1)
    for i, (_reason, record) in enumerate(poison):
        records += [to_record(e) for e in valid[i * chunk : (i + 1) * chunk]]
        records.append(record)
    records += [to_record(e) for e in valid[len(poison) * chunk :]]
    ends = produce_raw(servers.bootstrap, topic, records)
    process = aggregator(servers, dsn, prefix, workdir)
    process.start()
    await wait_caught_up(dsn, ends)
    metrics = httpx.get(f"{process.url}/metrics").text
    process.stop()

    dead = read_all(servers.bootstrap, deadletter_topic(prefix), expected=len(poison))
    originals = {(m.partition(), m.offset()): m for m in read_all(servers.bootstrap, topic, expected=len(records))}
    assert len(dead) == len(poison)
    for message, (reason, (key, value, headers)) in zip(dead, poison, strict=True):
        meta = dict(message.headers())
        assert reason in meta["dlq_reason"].decode(), meta["dlq_reason"]
        assert meta["dlq_topic"].decode() == topic
        assert message.value() == value and message.key() == key
        original = originals[(int(meta["dlq_partition"]), int(meta["dlq_offset"]))]
        assert original.value() == value and (original.headers() or []) == headers
    assert "aggregator_dead_letters_total 6.0" in metrics
    # every valid event around the poison was counted
    assert await stored_counters(dsn) == expected_counters(valid, REGISTRY)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM seen_events") == len({(e["source"], e["id"]) for e in valid})
    finally:
        await conn.close()


async def test_an_event_written_to_another_sectors_topic_is_dead_lettered(
    servers: Servers, dsn: str, workdir: Path
) -> None:
    """A producer of its own (not ingest) writes a health event to the transport topic: it is
    not counted but dead-lettered with the reason; the transport events around it count."""
    prefix = new_prefix()
    provision(servers.bootstrap, prefix)
    topic = sector_topic("transport", prefix)
    events = simulate(6_000, seed=23)
    transport = [e for e in events if e["type"].startswith("vn.gov.thanhhoa.transport.")][:60]
    stray = next(e for e in events if e["type"].startswith("vn.gov.thanhhoa.health."))
    records = [to_record(e) for e in transport[:30]] + [to_record(stray)] + [to_record(e) for e in transport[30:]]
    ends = produce_raw(servers.bootstrap, topic, records)
    process = aggregator(servers, dsn, prefix, workdir)
    process.start()
    await wait_caught_up(dsn, ends)
    process.stop()

    (dead,) = read_all(servers.bootstrap, deadletter_topic(prefix), expected=1)
    reason = dict(dead.headers())["dlq_reason"].decode()
    assert f"belongs to sector 'health', not to topic {topic!r}" in reason, reason
    assert dead.value() == to_record(stray)[1]
    assert await stored_counters(dsn) == expected_counters(transport, REGISTRY)
