"""Versioned SQL migrations and reference-data sync, idempotent, safe to run concurrently.

``migrate(dsn)`` takes a PostgreSQL advisory lock, applies every ``infra/migrations/NNNN_*.sql``
not yet recorded in ``schema_migrations`` (each in its own transaction), refuses to run when
an applied file has changed since, then loads the reference unit files of ``infra/reference``
(``services.runtime.units.store_units``). A second run changes nothing: no migration is
re-applied and no unit row is rewritten unless its data differ.
"""

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from services.core.units import Unit, UnitRegistry
from services.runtime.units import read_files, store_units

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
REFERENCE_DIR = Path(__file__).parent / "reference"
_ADVISORY_LOCK = 7_466_001  # arbitrary, constant: serialises concurrent migrators
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

log = structlog.get_logger(__name__)


class MigrationError(RuntimeError):
    """A migration file was edited after it was applied, or is misnamed."""

    retriable = False


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationReport:
    applied: tuple[str, ...]
    units_changed: int


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in version order; a misnamed .sql file is an error."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file {path.name!r} is not named NNNN_name.sql")
        migrations.append(Migration(match[1], match[2], path.read_text(encoding="utf-8")))
    return migrations


def reference_files(directory: Path = REFERENCE_DIR) -> list[Path]:
    """The unit, succession and population files shipped with the system."""
    return sorted(directory.glob("*.csv"))


@functools.cache
def reference_registry(directory: Path = REFERENCE_DIR) -> UnitRegistry:
    """The registry the reference files describe (for tests, benchmarks, the simulator)."""
    return read_files(reference_files(directory)).registry()


def reference_units(directory: Path = REFERENCE_DIR) -> list[Unit]:
    """Every unit of the reference files."""
    return list(reference_registry(directory).units)


async def migrate(dsn: str) -> MigrationReport:
    """Apply pending migrations and sync reference units. Raises MigrationError on drift."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK)
        try:
            applied = await _apply_pending(conn, discover())
            changed = (await store_units(conn, read_files(reference_files()), actor="migrate")).changed
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK)
    finally:
        await conn.close()
    log.info("migrated", applied=list(applied), units_changed=changed)
    return MigrationReport(applied=applied, units_changed=changed)


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> tuple[str, ...]:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    done = {r["version"]: r["checksum"] for r in await conn.fetch("SELECT * FROM schema_migrations")}
    applied = []
    for migration in migrations:
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version}_{migration.name} changed after it was "
                    "applied; add a new migration instead of editing an applied one"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
        applied.append(f"{migration.version}_{migration.name}")
    return tuple(applied)
