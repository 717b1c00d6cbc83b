"""The connector as a real process (``python -m services.connectors``) with a real
aggregator (``python -m services.aggregator``), against the session's broker and a fresh
PostgreSQL database: starter mappings loaded, topics under a prefix of their own."""

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from schemas.sectors import SECTORS
from schemas.topics import sector_topic
from services.connectors.adapters.mapping_store import load_directory
from services.runtime.auth import create_key
from tests.support.connectors_samples import STARTER
from tests.support.kafka import new_prefix, provision
from tests.support.procs import ServiceProcess, service_env
from tests.support.servers import Servers, fresh_database
from tests.support.waiting import eventually

XML = {"content-type": "application/xml"}


@dataclass
class Stack:
    bootstrap: str
    dsn: str
    prefix: str
    key: str
    connector: ServiceProcess
    aggregator: ServiceProcess | None
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=60))

    def url(self, path: str) -> str:
        return f"{self.connector.url}{path}"

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {key or self.key}"}

    async def post_json(self, path: str, body: Any, key: str | None = None) -> httpx.Response:
        headers = {"content-type": "application/json", **(self.auth(key) if key != "" else {})}
        return await self.client.post(self.url(path), content=orjson.dumps(body), headers=headers)

    async def post_xml(self, path: str, body: bytes) -> httpx.Response:
        return await self.client.post(self.url(path), content=body, headers={**XML, **self.auth()})

    async def fetchval(self, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchrow(sql, *args)
        finally:
            await conn.close()

    async def counter(self, metric: str, unit: str = "38", sector: str | None = None) -> int:
        """Σ of a counter at a unit over all time (monthly grain), one sector or all."""
        value = await self.fetchval(
            "SELECT coalesce(sum(value), 0) FROM counters_monthly WHERE unit_code = $1 AND metric = $2 "
            "AND ($3::text IS NULL OR sector = $3)",
            unit,
            metric,
            sector,
        )
        return int(value)

    async def counters_reach(
        self, expected: dict[str, int], unit: str = "38", sector: str | None = None, timeout_s: float = 60
    ) -> dict[str, int]:
        async def probe() -> dict[str, int]:
            return {m: await self.counter(m, unit, sector) for m in expected}

        return await eventually(probe, lambda got: got == expected, timeout_s=timeout_s, what=f"counters {expected}")

    def records(self, sector: str | None = None) -> list[Any]:
        """Every record of the prefix's sector topics (or one)."""
        topics = (
            [sector_topic(s, self.prefix) for s in SECTORS] if sector is None else [sector_topic(sector, self.prefix)]
        )
        out: list[Any] = []
        for topic in topics:
            out += read_topic(self.bootstrap, topic)
        return out


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Every record of a topic, each partition read to its end-of-partition event."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reader-" + secrets.token_hex(3),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(at_end) < len(partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_end.add(message.partition())
                else:
                    out.append(message)
        return out
    finally:
        consumer.close()


def headers_of(message: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in (message.headers() or [])}


async def connector_key(dsn: str, units: list[str] | None = None, kind: str = "connector") -> str:
    conn = await asyncpg.connect(dsn)
    try:
        issued = await create_key(
            conn,
            kind=kind,
            label="test-connector",
            units=units,  # type: ignore[arg-type]
            sector="health" if kind == "ingest" else None,
        )
        return issued.key
    finally:
        await conn.close()


async def _start(process: ServiceProcess) -> ServiceProcess:
    process.start(wait_ready=False)
    await asyncio.to_thread(process.wait_ready)
    return process


@contextlib.asynccontextmanager
async def connector_stack(
    servers: Servers, workdir: Path, *, aggregator: bool = True, **extra: str
) -> AsyncIterator[Stack]:
    dsn = await fresh_database(servers)
    prefix = new_prefix()
    await asyncio.to_thread(provision, servers.bootstrap, prefix)
    conn = await asyncpg.connect(dsn)
    try:
        await load_directory(conn, STARTER)
    finally:
        await conn.close()
    key = await connector_key(dsn)
    env = service_env(
        servers.bootstrap,
        dsn,
        prefix,
        LOG_JSON="true",
        CONNECTORS_KEY_CACHE_TTL_S="0",
        AGGREGATOR_GROUP_ID=f"agg-{prefix.rstrip('.')}",
        AGGREGATOR_BATCH_MAX_RECORDS="2000",
        **extra,
    )
    connector = ServiceProcess("services.connectors", env, "CONNECTORS_PORT", workdir)
    agg = ServiceProcess("services.aggregator", env, "AGGREGATOR_PORT", workdir) if aggregator else None
    try:
        await _start(connector)
        if agg is not None:
            await _start(agg)
        stack = Stack(servers.bootstrap, dsn, prefix, key, connector, agg)
        try:
            yield stack
        finally:
            await stack.client.aclose()
    finally:
        connector.stop()
        if agg is not None:
            agg.stop()
