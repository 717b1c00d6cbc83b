"""Versioned SQL migrations and reference-data sync, idempotent, safe to run concurrently.

``migrate(dsn)`` takes a PostgreSQL advisory lock, applies every ``infra/migrations/NNNN_*.sql``
not yet recorded in ``schema_migrations`` (each in its own transaction), refuses to run when
an applied file has changed since, then syncs the unit registry from ``infra/reference``. A
second run changes nothing: no migration is re-applied and no unit row is rewritten unless
its data differ.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from services.core.units import Unit, load_units_csv

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


def reference_units(directory: Path = REFERENCE_DIR) -> list[Unit]:
    """Units from every ``units_*.csv`` reference file, parents before children."""
    units: dict[str, Unit] = {}
    for path in sorted(directory.glob("units_*.csv")):
        for unit in load_units_csv(path):
            units[unit.code] = unit
    return sorted(units.values(), key=lambda u: (u.level, u.code))


async def migrate(dsn: str) -> MigrationReport:
    """Apply pending migrations and sync reference units. Raises MigrationError on drift."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK)
        try:
            applied = await _apply_pending(conn, discover())
            changed = await sync_units(conn, reference_units())
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


async def sync_units(conn: asyncpg.Connection, units: list[Unit]) -> int:
    """Upsert units; rows whose data are unchanged are not touched. Returns rows written."""
    changed = 0
    async with conn.transaction():
        for unit in units:
            status = await conn.execute(
                """INSERT INTO units (code, name, full_name, kind, level, parent_code,
                                      valid_from, valid_to, population)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                   ON CONFLICT (code) DO UPDATE SET
                       name = excluded.name, full_name = excluded.full_name,
                       kind = excluded.kind, level = excluded.level,
                       parent_code = excluded.parent_code, valid_from = excluded.valid_from,
                       valid_to = excluded.valid_to,
                       population = COALESCE(excluded.population, units.population)
                   WHERE (units.name, units.full_name, units.kind, units.level,
                          units.parent_code, units.valid_from, units.valid_to)
                         IS DISTINCT FROM
                         (excluded.name, excluded.full_name, excluded.kind, excluded.level,
                          excluded.parent_code, excluded.valid_from, excluded.valid_to)
                      OR (excluded.population IS NOT NULL
                          AND units.population IS DISTINCT FROM excluded.population)""",
                unit.code,
                unit.name,
                unit.full_name,
                unit.kind,
                unit.level,
                unit.parent_code,
                unit.valid_from,
                unit.valid_to,
                unit.population,
            )
            changed += int(status.split()[-1])
    return changed
