"""PostgreSQL side of the aggregator: partition claims, and one transaction per batch.

Exactly-once effect: a batch's counter deltas, entity states, deduplication keys and the
next offset of each of its partitions are written in one transaction. A partition is
*claimed* on assignment, which bumps its generation; a commit checks the generation and the
offset it started from (compare-and-set), so a consumer that lost the partition to another
cannot commit stale work.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import structlog

from services.aggregator.domain import dossiers, projects
from services.aggregator.domain.batch import Effects, TopicPartition, aggregate, dossier_ids, project_ids
from services.aggregator.domain.decode import Decoded

log = structlog.get_logger(__name__)


class StaleAssignment(RuntimeError):
    """Another consumer claimed a partition of this batch; the batch must be dropped."""

    retriable = True


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """What the broker says about an assigned partition."""

    topic: str
    partition: int
    topic_id: str | None
    low: int  # first offset still in the log
    high: int  # offset the next record will get


@dataclass(frozen=True, slots=True)
class Claim:
    start: int  # where to read from
    generation: int
    reset: bool  # the log restarted below the stored offset (or the topic was recreated)


def resolve_start(stored: int | None, stored_topic_id: str | None, info: PartitionInfo) -> tuple[int, bool]:
    """Broker-reset rule: where to start reading a partition, and whether it was reset.

    - No stored offset: the start of the retained log.
    - The topic id changed (the topic was deleted and recreated - which is also what an
      empty, restarted embedded broker amounts to once its topics are provisioned again):
      the log is a new one; read it from its start instead of skipping it as "already seen".
    - No topic id known on one side: the log is taken as new when it now ends below the
      stored offset. (Only a fallback: Tansu 0.6 reports a partition's end as the base
      offset of its last record batch + 1, so its end offset is too low whenever that batch
      holds several records; with a topic id that number is not needed.)
    - A stored offset below the log start (retention deleted unread records): the log start.
    - Otherwise the stored offset.
    A false "reset" costs a re-read that deduplication makes harmless; a missed one would
    skip events, which is why doubt resolves towards re-reading.
    """
    if stored is None:
        return info.low, False
    if stored_topic_id is not None and info.topic_id is not None:
        if stored_topic_id != info.topic_id:
            return info.low, True
    elif 0 <= info.high < stored:  # high < 0: the broker did not say
        return info.low, True
    return max(stored, info.low), False


@dataclass(frozen=True, slots=True)
class CommitResult:
    new_events: int
    duplicates: int
    effects: Effects


class CounterStore:
    """The aggregator's PostgreSQL adapter."""

    def __init__(self, pool: asyncpg.Pool, group: str, lineage: Callable[[str], tuple[str, ...]]) -> None:
        self.pool = pool
        self.group = group
        self.lineage = lineage

    async def claim(self, infos: list[PartitionInfo]) -> dict[TopicPartition, Claim]:
        """Take over partitions: bump each generation and decide where to read from."""
        claims: dict[TopicPartition, Claim] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for info in sorted(infos, key=lambda i: (i.topic, i.partition)):
                row = await conn.fetchrow(
                    """INSERT INTO consumer_offsets
                           (consumer_group, topic, partition, next_offset, topic_id, generation)
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
                claims[(info.topic, info.partition)] = Claim(start, row["generation"], reset)
        return claims

    async def stored_positions(self, partitions: list[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        """(generation, next offset) of ``partitions`` as PostgreSQL holds them."""
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

    async def commit(
        self,
        events: list[Decoded],
        offsets: dict[TopicPartition, tuple[int, int, int]],
        unique_new: Callable[[set[bytes]], list[Decoded]],
        today: dt.date,
    ) -> CommitResult:
        """Write one batch atomically.

        ``offsets`` maps each partition to (generation, expected stored offset, next offset).
        Steps, in one transaction (synchronous_commit off: a commit lost in a crash loses
        its offsets with it, so the batch is simply read again):
        1. compare-and-set every partition's offset - StaleAssignment if one fails;
        2. record the batch's deduplication keys, learning which were already counted;
        3. lock and read the state of every dossier and project the new events touch;
        4. fold the new events into counter deltas and states (pure);
        5. upsert entity states, then counter deltas at hour, day and month grain, in key
           order (no deadlock between concurrent aggregators).
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = off")
            await self._advance_offsets(conn, offsets)
            keys = list({e.event_key for e in events})
            duplicates: set[bytes] = set()
            if keys:
                rows = await conn.fetch(
                    """WITH ins AS (
                           INSERT INTO seen_events (event_key, first_seen)
                           SELECT k, $2 FROM unnest($1::bytea[]) AS k
                           ON CONFLICT DO NOTHING RETURNING event_key)
                       SELECT k FROM unnest($1::bytea[]) AS k
                       EXCEPT SELECT event_key FROM ins""",
                    keys,
                    today,
                )
                duplicates = {r[0] for r in rows}
            new = unique_new(duplicates)
            dossier_states = await self._load_dossiers(conn, dossier_ids(new))
            project_states = await self._load_projects(conn, project_ids(new))
            effects = aggregate(new, dossier_states, project_states, self.lineage)
            await self._write_dossiers(conn, effects)
            await self._write_projects(conn, effects)
            await self._write_counters(conn, effects)
        return CommitResult(new_events=len(new), duplicates=len(events) - len(new), effects=effects)

    async def _advance_offsets(
        self, conn: asyncpg.Connection, offsets: dict[TopicPartition, tuple[int, int, int]]
    ) -> None:
        for (topic, partition), (generation, expected, nxt) in sorted(offsets.items()):
            status = await conn.execute(
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

    async def _load_dossiers(self, conn: asyncpg.Connection, ids: set[str]) -> dict[str, dossiers.DossierState]:
        if not ids:
            return {}
        rows = await conn.fetch(
            """SELECT dossier_id, sector, unit_code, received_at, due_at, channel, procedure_code,
                      fee_required, digitised, reused_data, supplement_count, paused_seconds,
                      pause_started_at, resolved_at, e_result, paid_online, satisfied
               FROM dossiers WHERE dossier_id = ANY($1::text[]) ORDER BY dossier_id FOR UPDATE""",
            sorted(ids),
        )
        return {r["dossier_id"]: dossiers.DossierState(**dict(r)) for r in rows}

    async def _load_projects(self, conn: asyncpg.Connection, ids: set[str]) -> dict[str, projects.ProjectState]:
        if not ids:
            return {}
        rows = await conn.fetch(
            """SELECT project_id, sector, unit_code, title, stage, stage_changed_at,
                      planned_completion, percent_complete, planned_percent, progress_reported_at
               FROM projects WHERE project_id = ANY($1::text[]) ORDER BY project_id FOR UPDATE""",
            sorted(ids),
        )
        return {r["project_id"]: projects.ProjectState(**dict(r)) for r in rows}

    async def _write_dossiers(self, conn: asyncpg.Connection, effects: Effects) -> None:
        if not effects.dossiers:
            return
        states = [effects.dossiers[k] for k in sorted(effects.dossiers)]
        cols = [
            "dossier_id",
            "sector",
            "unit_code",
            "received_at",
            "due_at",
            "channel",
            "procedure_code",
            "fee_required",
            "digitised",
            "reused_data",
            "supplement_count",
            "paused_seconds",
            "pause_started_at",
            "resolved_at",
            "e_result",
            "paid_online",
            "satisfied",
        ]
        types = [
            "text",
            "text",
            "text",
            "timestamptz",
            "timestamptz",
            "text",
            "text",
            "bool",
            "bool",
            "bool",
            "int4",
            "int8",
            "timestamptz",
            "timestamptz",
            "bool",
            "bool",
            "bool",
        ]
        await _upsert(conn, "dossiers", "dossier_id", cols, types, [[getattr(s, c) for s in states] for c in cols])

    async def _write_projects(self, conn: asyncpg.Connection, effects: Effects) -> None:
        if not effects.projects:
            return
        states = [effects.projects[k] for k in sorted(effects.projects)]
        cols = [
            "project_id",
            "sector",
            "unit_code",
            "title",
            "stage",
            "stage_changed_at",
            "planned_completion",
            "percent_complete",
            "planned_percent",
            "progress_reported_at",
        ]
        types = ["text", "text", "text", "text", "text", "timestamptz", "date", "float8", "float8", "timestamptz"]
        await _upsert(conn, "projects", "project_id", cols, types, [[getattr(s, c) for s in states] for c in cols])

    async def _write_counters(self, conn: asyncpg.Connection, effects: Effects) -> None:
        if effects.hourly:
            items = sorted(effects.hourly.items())
            await conn.execute(
                """INSERT INTO counters_hourly AS c (unit_code, metric, sector, bucket, value)
                   SELECT u, m, s, to_timestamp(h * 3600), v
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[])
                        AS t(u, m, s, h, v)
                   ON CONFLICT (unit_code, metric, sector, bucket)
                   DO UPDATE SET value = c.value + excluded.value""",
                *_columns(items),
            )
        for table, deltas in (("counters_daily", effects.daily), ("counters_monthly", effects.monthly)):
            if deltas:
                items = sorted(deltas.items())
                await conn.execute(
                    f"""INSERT INTO {table} AS c (unit_code, metric, sector, bucket, value)
                        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::int8[])
                        ON CONFLICT (unit_code, metric, sector, bucket)
                        DO UPDATE SET value = c.value + excluded.value""",
                    *_columns(items),
                )

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


async def _upsert(
    conn: asyncpg.Connection,
    table: str,
    key: str,
    cols: list[str],
    types: list[str],
    arrays: list[list[object]],
) -> None:
    params = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != key)
    await conn.execute(
        f"""INSERT INTO {table} ({", ".join(cols)})
            SELECT * FROM unnest({params})
            ON CONFLICT ({key}) DO UPDATE SET {updates}, updated_at = now()""",
        *arrays,
    )
