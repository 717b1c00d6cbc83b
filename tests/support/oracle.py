"""Expected counters computed in memory from the generated events, without Kafka or
PostgreSQL: the ground truth the exactly-once tests compare the database with."""

import datetime as dt
from collections import Counter
from typing import Any

import asyncpg

from schemas.events import EVENT_SPECS
from services.aggregator.domain.batch import Batch
from services.aggregator.domain.decode import Decoded, Decoder, Record
from services.aggregator.domain.fold import fold, registry_lineage
from services.aggregator.flush import count_batch
from services.aggregator.ports import CounterStore
from services.core.units import UnitRegistry
from services.simulator.encode import to_record

CounterRows = dict[tuple[str, str, str, str, object], int]  # (table, unit, metric, sector, bucket)


def record_of(event: dict[str, Any], offset: int, partition: int = 0) -> Record:
    """The Kafka record the sector service writes for a structured-mode event dict, on its
    sector's (unprefixed) topic."""
    return Record(EVENT_SPECS[event["type"]].topic_suffix, partition, offset, *to_record(event))


def decode_all(events: list[dict[str, Any]], registry: UnitRegistry) -> list[Decoded]:
    decoder = Decoder(lambda: registry)
    out = []
    for offset, event in enumerate(events):
        decoded = decoder.decode(record_of(event, offset))
        assert isinstance(decoded, Decoded), decoded
        out.append(decoded)
    return out


async def count_events(
    store: CounterStore, events: list[dict[str, Any]], registry: UnitRegistry, today: dt.date
) -> None:
    """Count events straight into a store, as the aggregator would (one transaction)."""
    batch = Batch(len(events) + 1, 3600)
    for decoded in decode_all(events, registry):
        batch.add(decoded)
    await count_batch(store, batch, registry_lineage(registry), today)


def expected_counters(events: list[dict[str, Any]], registry: UnitRegistry) -> CounterRows:
    """Every counter row the aggregator must end with, deduplicating by (source, id)."""
    seen: set[bytes] = set()
    unique = []
    for event in decode_all(events, registry):
        if event.event_key not in seen:
            seen.add(event.event_key)
            unique.append(event)
    effects = fold(unique, {}, registry_lineage(registry))
    rows: CounterRows = {}
    for (unit, metric, sector, hour), value in effects.hourly.items():
        rows[("hourly", unit, metric, sector, dt.datetime.fromtimestamp(hour * 3600, dt.UTC))] = value
    for table, deltas in (("daily", effects.daily), ("monthly", effects.monthly)):
        for (unit, metric, sector, bucket), value in deltas.items():
            rows[(table, unit, metric, sector, bucket)] = value
    return rows


async def stored_counters(dsn: str) -> CounterRows:
    conn = await asyncpg.connect(dsn)
    try:
        rows: CounterRows = {}
        for table in ("hourly", "daily", "monthly"):
            for r in await conn.fetch(
                f"SELECT unit_code, metric, sector, bucket, value FROM counters_{table} WHERE value <> 0"
            ):
                rows[(table, r[0], r[1], r[2], r[3])] = r[4]
        return rows
    finally:
        await conn.close()


def distinct_type_counts(events: list[dict[str, Any]]) -> Counter[str]:
    """Independent count: distinct (source, id) events per type, straight from the dicts."""
    seen: set[tuple[str, str]] = set()
    counts: Counter[str] = Counter()
    for event in events:
        ident = (event["source"], event["id"])
        if ident not in seen:
            seen.add(ident)
            counts[event["type"]] += 1
    return counts


def diff(expected: CounterRows, actual: CounterRows, limit: int = 10) -> list[str]:
    out = []
    for key in sorted(set(expected) | set(actual), key=str):
        if expected.get(key, 0) != actual.get(key, 0):
            out.append(f"{key}: expected {expected.get(key, 0)}, stored {actual.get(key, 0)}")
            if len(out) >= limit:
                break
    return out
