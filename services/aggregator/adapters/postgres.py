"""The aggregator's PostgreSQL adapter: partition claims, and one transaction per batch.

Implements the ports ``OffsetStore`` and ``CounterStore`` (``services.aggregator.ports``).
Exactly-once effect: a batch's counter deltas, entity states, deduplication keys and the
next offset of each of its partitions are written in one transaction
(``services.aggregator.flush``). The transaction runs with ``synchronous_commit = off``: a
commit lost in a crash loses its offsets with it, so the batch is simply read again.
"""

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog

from services.aggregator.domain.claims import Claim, PartitionInfo, Position, TopicPartition, resolve_start
from services.aggregator.domain.fold import Effects, States
from services.aggregator.ports import OffsetMove, StaleAssignment
from services.readmodels.tables import ENTITY_TABLES, EntityTable

log = structlog.get_logger(__name__)


class PgOffsetStore:
    """Partition claims and stored offsets (table ``consumer_offsets``)."""

    def __init__(self, pool: asyncpg.Pool, group: str) -> None:
        self.pool = pool
        self.group = group

    async def claim(self, infos: list[PartitionInfo]) -> dict[TopicPartition, Claim]:
        """Take over partitions: bump each generation and decide where to read from."""
        claims: dict[TopicPartition, Claim] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for info in sorted(infos, key=lambda i: (i.topic, i.partition)):
                claims[(info.topic, info.partition)] = await self._claim_one(conn, info)
        return claims

    async def _claim_one(self, conn: asyncpg.Connection, info: PartitionInfo) -> Claim:
        row = await conn.fetchrow(
            """INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, topic_id, generation)
               VALUES ($1, $2, $3, -1, $4, 1)
               ON CONFLICT (consumer_group, topic, partition) DO UPDATE
                   SET generation = consumer_offsets.generation + 1, updated_at = now()
               RETURNING next_offset, topic_id, generation""",
            self.group,
            info.topic,
            info.partition,
            info.topic_id,
        )
        assert row is not None
        stored = row["next_offset"] if row["next_offset"] >= 0 else None
        start, reset = resolve_start(stored, row["topic_id"], info)
        if reset:
            log.warning(
                "partition log was reset; reading the new log from its start",
                topic=info.topic,
                partition=info.partition,
                stored_offset=stored,
                log_end=info.high,
                stored_topic_id=row["topic_id"],
                topic_id=info.topic_id,
            )
        await conn.execute(
            """UPDATE consumer_offsets SET next_offset = $4, topic_id = COALESCE($5, topic_id)
               WHERE consumer_group = $1 AND topic = $2 AND partition = $3""",
            self.group,
            info.topic,
            info.partition,
            start,
            info.topic_id,
        )
        return Claim(start, row["generation"], reset)

    async def stored_positions(self, partitions: list[TopicPartition]) -> dict[TopicPartition, Position]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT o.topic, o.partition, o.generation, o.next_offset
                   FROM consumer_offsets o
                   JOIN unnest($2::text[], $3::int4[]) AS p(topic, partition)
                     ON o.topic = p.topic AND o.partition = p.partition
                   WHERE o.consumer_group = $1""",
                self.group,
                [t for t, _ in partitions],
                [p for _, p in partitions],
            )
        return {(r["topic"], r["partition"]): (r["generation"], r["next_offset"]) for r in rows}


class PgBatchTransaction:
    """One batch's transaction (``ports.BatchTransaction``)."""

    def __init__(self, conn: asyncpg.Connection, group: str) -> None:
        self.conn = conn
        self.group = group

    async def advance_offsets(self, moves: dict[TopicPartition, OffsetMove]) -> None:
        for (topic, partition), (generation, expected, nxt) in sorted(moves.items()):
            status = await self.conn.execute(
                """UPDATE consumer_offsets SET next_offset = $6, updated_at = now()
                   WHERE consumer_group = $1 AND topic = $2 AND partition = $3
                     AND generation = $4 AND next_offset = $5""",
                self.group,
                topic,
                partition,
                generation,
                expected,
                nxt,
            )
            if status != "UPDATE 1":
                raise StaleAssignment(
                    f"{topic}[{partition}] was claimed by another consumer "
                    f"(generation {generation}, expected offset {expected})"
                )

    async def record_seen(self, keys: list[bytes], today: dt.date) -> set[bytes]:
        rows = await self.conn.fetch(
            """WITH ins AS (
                   INSERT INTO seen_events (event_key, first_seen)
                   SELECT k, $2 FROM unnest($1::bytea[]) AS k
                   ON CONFLICT DO NOTHING RETURNING event_key)
               SELECT k FROM unnest($1::bytea[]) AS k
               EXCEPT SELECT event_key FROM ins""",
            keys,
            today,
        )
        return {r[0] for r in rows}

    async def load_states(self, ids: dict[str, set[str]]) -> States:
        states: States = {}
        for family, wanted in ids.items():
            if wanted:
                states[family] = await self._load(ENTITY_TABLES[family], wanted)
        return states

    async def _load(self, table: EntityTable, ids: set[str]) -> dict[str, Any]:
        rows = await self.conn.fetch(
            f"""SELECT {table.select_list} FROM {table.name}
                WHERE {table.key} = ANY($1::text[]) ORDER BY {table.key} FOR UPDATE""",
            sorted(ids),
        )
        return {r[table.key]: table.from_row(r) for r in rows}

    async def write(self, effects: Effects) -> None:
        """Entity states, then counter deltas at hour, day and month grain, each in key order
        (no deadlock between concurrent aggregators)."""
        for family, states in sorted(effects.entities.items()):
            if states:
                await self._upsert(ENTITY_TABLES[family], [states[k] for k in sorted(states)])
        await self._write_counters(effects)

    async def _upsert(self, table: EntityTable, states: list[Any]) -> None:
        params = ", ".join(f"${i + 1}::{pg}[]" for i, (_, pg) in enumerate(table.columns))
        updates = ", ".join(f"{c} = excluded.{c}" for c in table.names if c != table.key)
        await self.conn.execute(
            f"""INSERT INTO {table.name} ({table.select_list})
                SELECT * FROM unnest({params})
                ON CONFLICT ({table.key}) DO UPDATE SET {updates}, updated_at = now()""",
            *[[getattr(s, c) for s in states] for c in table.names],
        )

    async def _write_counters(self, effects: Effects) -> None:
        if effects.hourly:
            await self.conn.execute(
                """INSERT INTO counters_hourly AS c (unit_code, metric, sector, bucket, value)
                   SELECT u, m, s, to_timestamp(h * 3600), v
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[]) AS t(u, m, s, h, v)
                   ON CONFLICT (unit_code, metric, sector, bucket)
                   DO UPDATE SET value = c.value + excluded.value""",
                *_columns(sorted(effects.hourly.items())),
            )
        for table, deltas in (("counters_daily", effects.daily), ("counters_monthly", effects.monthly)):
            if deltas:
                await self.conn.execute(
                    f"""INSERT INTO {table} AS c (unit_code, metric, sector, bucket, value)
                        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::int8[])
                        ON CONFLICT (unit_code, metric, sector, bucket)
                        DO UPDATE SET value = c.value + excluded.value""",
                    *_columns(sorted(deltas.items())),
                )


class PgCounterStore:
    """``ports.CounterStore``: a transaction per batch, plus dedupe housekeeping."""

    def __init__(self, pool: asyncpg.Pool, group: str) -> None:
        self.pool = pool
        self.group = group

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgBatchTransaction]:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = off")
            yield PgBatchTransaction(conn, self.group)

    async def delete_expired_dedupe_keys(self, before: dt.date, limit: int = 50_000) -> int:
        """Forget deduplication keys first seen before ``before`` (the horizon), in chunks."""
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                """DELETE FROM seen_events WHERE event_key IN (
                       SELECT event_key FROM seen_events WHERE first_seen < $1 LIMIT $2)""",
                before,
                limit,
            )
        return int(status.split()[-1])


def _columns(items: list[tuple[tuple[str, str, str, object], int]]) -> list[list[object]]:
    units, metrics, sectors, buckets, values = [], [], [], [], []
    for (unit, metric, sector, bucket), value in items:
        units.append(unit)
        metrics.append(metric)
        sectors.append(sector)
        buckets.append(bucket)
        values.append(value)
    return [units, metrics, sectors, buckets, values]
