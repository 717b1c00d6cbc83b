"""Real servers for tests: the embedded broker and PostgreSQL, or the ones named by
``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` (CI points these at Apache Kafka)."""

import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from infra.embedded import EmbeddedPostgres, TansuBroker
from infra.migrate import migrate
from infra.processes import free_port


@dataclass
class Servers:
    bootstrap: str
    admin_dsn: str  # a maintenance database: tests create their own databases from it
    broker: TansuBroker | None  # None when the broker is external
    postgres: EmbeddedPostgres | None
    broker_kind: str  # "tansu" or "external"

    def dsn_for(self, database: str) -> str:
        base, _, _ = self.admin_dsn.rpartition("/")
        return f"{base}/{database}"


def start_servers(workdir: Path) -> Iterator[Servers]:
    """Start whatever is not given by the environment; stop it afterwards."""
    broker = postgres = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    dsn = os.environ.get("DATABASE_URL", "")
    try:
        if not bootstrap:
            broker = TansuBroker(free_port(), workdir / "tansu.log")
            broker.start()
            bootstrap = broker.bootstrap
        if not dsn:
            postgres = EmbeddedPostgres(workdir / "pg", free_port(), workdir / "postgres.log", durable=False)
            postgres.start()
            dsn = postgres.dsn
        yield Servers(bootstrap, dsn, broker, postgres, "tansu" if broker else "external")
    finally:
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()


async def fresh_database(servers: Servers, name: str | None = None) -> str:
    """Create an empty database, migrate it, return its DSN."""
    name = name or f"t_{secrets.token_hex(5)}"
    conn = await asyncpg.connect(servers.admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = servers.dsn_for(name)
    await migrate(dsn)
    return dsn


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="smartcity-test-"))
