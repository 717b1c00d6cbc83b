"""Rebuild every counter and entity table from the retained Kafka topics, and compare.

KPIs are derived data: as long as Kafka retention covers the period, losing PostgreSQL's
counters must not lose them. ``smartcity rebuild`` reads each sector partition from its
first retained offset up to the offset the live aggregator has committed, folds the events
with the aggregator's own code into a fresh schema, and compares that schema's counters,
dossiers and projects with the live ones. Equal tables prove the live state is exactly
what the history says; a difference names the rows.
"""

import asyncio
import datetime as dt
import secrets
from dataclasses import dataclass, field

import asyncpg
import structlog
from confluent_kafka import Consumer, KafkaError, TopicPartition

from infra.migrate import migrate
from schemas.sectors import SECTORS
from schemas.topics import sector_topic
from services.aggregator.adapters.postgres import PgCounterStore
from services.aggregator.domain.batch import Batch
from services.aggregator.domain.decode import Decoded, Decoder, Record
from services.aggregator.domain.fold import registry_lineage
from services.aggregator.flush import count_batch
from services.readmodels.tables import DOCUMENTS, DOSSIERS, PROJECTS
from services.runtime.settings import KafkaSettings
from services.runtime.units import load_registry

log = structlog.get_logger(__name__)

# Columns compared per table (updated_at differs by construction).
COMPARED: dict[str, str] = {
    "counters_hourly": "unit_code, metric, sector, bucket, value",
    "counters_daily": "unit_code, metric, sector, bucket, value",
    "counters_monthly": "unit_code, metric, sector, bucket, value",
    **{table.name: table.select_list for table in (DOSSIERS, DOCUMENTS, PROJECTS)},
}


@dataclass
class RebuildReport:
    schema: str
    events_read: int = 0
    poison: int = 0
    differences: dict[str, int] = field(default_factory=dict)  # table → rows that differ
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not any(self.differences.values())


async def _targets(live: asyncpg.Connection, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
    rows = await live.fetch(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = ANY($2)",
        group,
        topics,
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows if r["next_offset"] > 0}


class HistoryReader:
    """Reads every record below the target offsets, in per-partition order, chunk by chunk
    (blocking: call :meth:`next_chunk` from a thread)."""

    def __init__(self, settings: KafkaSettings, targets: dict[tuple[str, int], int], chunk_size: int) -> None:
        self.remaining = dict(targets)
        self.chunk_size = chunk_size
        self.consumer = Consumer(
            {
                **settings.librdkafka(),
                "group.id": f"rebuild-{secrets.token_hex(4)}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.assign([TopicPartition(t, p, 0) for (t, p) in targets])

    def next_chunk(self) -> list[Record]:
        """Up to ``chunk_size`` records; empty when every partition reached its target."""
        chunk: list[Record] = []
        idle = 0
        while self.remaining and len(chunk) < self.chunk_size:
            messages = self.consumer.consume(min(10_000, self.chunk_size - len(chunk)), 0.2)
            idle = 0 if messages else idle + 1
            if idle > 150:
                raise RuntimeError(f"history ends before the live offsets: {sorted(self.remaining.items())[:5]}")
            for m in messages:
                error = m.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error during rebuild", error=str(error))
                    continue
                key = (m.topic(), m.partition())
                if key not in self.remaining or m.offset() >= self.remaining[key]:
                    continue
                chunk.append(Record(m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers()))
                if m.offset() + 1 >= self.remaining[key]:
                    del self.remaining[key]
        return chunk

    def close(self) -> None:
        self.consumer.close()


async def rebuild(
    dsn: str,
    kafka: KafkaSettings,
    *,
    group: str = "kpi-aggregator",
    schema: str | None = None,
    batch_size: int = 20_000,
    keep: bool = False,
) -> RebuildReport:
    """Rebuild into ``schema`` (created fresh) and compare with the live tables."""
    schema = schema or f"rebuild_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}"
    report = RebuildReport(schema)
    live = await asyncpg.connect(dsn)
    try:
        live_schema = await live.fetchval("SELECT current_schema()")
        await live.execute(f'CREATE SCHEMA "{schema}"')
        topics = [sector_topic(s, kafka.topic_prefix) for s in SECTORS]
        targets = await _targets(live, group, topics)
        await migrate_into(dsn, schema)
        registry = await load_registry(live)
        reader = HistoryReader(kafka, targets, batch_size)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, server_settings={"search_path": schema})
        assert pool is not None
        try:
            store = PgCounterStore(pool, "rebuild")
            decoder = Decoder(lambda: registry)
            lineage = registry_lineage(registry)
            while chunk := await asyncio.to_thread(reader.next_chunk):
                batch = Batch(len(chunk) + 1, 3600)
                for record in chunk:
                    item = decoder.decode(record)
                    batch.add(item)
                    report.poison += not isinstance(item, Decoded)
                await count_batch(store, batch, lineage, dt.date.today())
                report.events_read += len(chunk)
        finally:
            reader.close()
            await pool.close()
        for table, columns in COMPARED.items():
            where = " WHERE value <> 0" if table.startswith("counters") else ""
            live_rows = f'SELECT {columns} FROM "{live_schema}".{table}{where}'
            rebuilt_rows = f'SELECT {columns} FROM "{schema}".{table}{where}'
            rows = await live.fetch(
                f"(({live_rows}) EXCEPT ({rebuilt_rows})) UNION ALL (({rebuilt_rows}) EXCEPT ({live_rows})) LIMIT 1000"
            )
            report.differences[table] = len(rows)
            report.samples[table] = [str(tuple(r)) for r in rows[:5]]
        if not keep:
            await live.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await live.close()
    log.info("rebuild compared", schema=schema, events=report.events_read, differences=report.differences)
    return report


async def migrate_into(dsn: str, schema: str) -> None:
    """Apply the migrations inside ``schema`` (its own schema_migrations, units, …)."""
    separator = "&" if "?" in dsn else "?"
    await migrate(f"{dsn}{separator}search_path={schema}")  # asyncpg passes unknown DSN params as settings
