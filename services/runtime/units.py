"""The unit registry in PostgreSQL: loading unit files, reading the registry back, and the
copy every service holds in memory.

Loading (``smartcity units load``, ``smartcity migrate`` for the reference files) validates
the registry the database would hold *with* the new files before writing anything, writes
in one transaction and bumps ``unit_registry_meta.version``. Services poll that version
every few seconds and reload when it changed, and check it at once before they reject an
event for its unit - so an event for a unit that is valid only in a file loaded a moment
ago is accepted by ingest and counted by the aggregator, with no restart.
"""

import asyncio
import contextlib
import gc
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import structlog

from services.core.units import (
    PopulationFigure,
    Succession,
    UnitDataError,
    UnitRegistry,
    UnitRow,
    file_kind,
    population_date,
    read_population,
    read_successions,
    read_unit_rows,
)
from services.runtime.db import UNAVAILABLE_ERRORS

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class UnitData:
    """What unit files (or the unit tables) hold."""

    rows: list[UnitRow] = field(default_factory=list)
    successions: list[Succession] = field(default_factory=list)
    population: list[PopulationFigure] = field(default_factory=list)

    def merged(self, other: "UnitData") -> "UnitData":
        """``other`` over ``self``: a row of the same (code, first day), a link of the same
        (old, new, date) or a figure of the same (code, date) replaces the older one."""
        rows = {(r.code, r.valid_from): r for r in (*self.rows, *other.rows)}
        links = {(s.old_code, s.new_code, s.effective): s for s in (*self.successions, *other.successions)}
        figures = {(p.code, p.as_of): p for p in (*self.population, *other.population)}
        return UnitData(list(rows.values()), list(links.values()), list(figures.values()))

    def registry(self) -> UnitRegistry:
        return UnitRegistry.from_rows(self.rows, self.successions, self.population)


def read_files(paths: Iterable[Path]) -> UnitData:
    """Unit, succession and population files, each recognised by its columns."""
    data = UnitData()
    for path in paths:
        kind = file_kind(path)
        if kind == "units":
            data.rows += read_unit_rows(path)
        elif kind == "succession":
            data.successions += read_successions(path)
        else:
            data.population += read_population(path, population_date(path))
    return data


async def read_data(conn: asyncpg.Connection) -> UnitData:
    rows = await conn.fetch("SELECT code, name, full_name, kind, parent_code, valid_from, valid_to FROM unit_rows")
    links = await conn.fetch("SELECT old_code, new_code, share, effective, weight FROM unit_successions")
    figures = await conn.fetch("SELECT code, as_of, population, area_km2 FROM unit_population")
    return UnitData(
        [UnitRow(**dict(r)) for r in rows],
        [Succession(**dict(r)) for r in links],
        [PopulationFigure(**dict(r)) for r in figures],
    )


async def load_registry(conn: asyncpg.Connection) -> UnitRegistry:
    """The registry PostgreSQL holds (UnitDataError if its rows contradict themselves)."""
    return (await read_data(conn)).registry()


async def registry_version(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT version FROM unit_registry_meta"))


@dataclass(frozen=True, slots=True)
class LoadReport:
    rows: int
    successions: int
    population: int
    version: int

    @property
    def changed(self) -> int:
        return self.rows + self.successions + self.population


async def store_units(conn: asyncpg.Connection, data: UnitData, actor: str = "cli") -> LoadReport:
    """Validate the registry the database would hold with ``data``, then write ``data``
    (upserts; unchanged rows are not touched) and bump the registry version, in one
    transaction. UnitDataError (nothing written) when the result contradicts itself."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE unit_registry_meta IN EXCLUSIVE MODE")
        (await read_data(conn)).merged(data).registry()  # raises before anything is written
        rows = await _upsert_rows(conn, data.rows)
        links = await _upsert_links(conn, data.successions)
        figures = await _upsert_figures(conn, data.population)
        version = await registry_version(conn)
        if rows + links + figures:
            version = int(
                await conn.fetchval(
                    "UPDATE unit_registry_meta SET version = version + 1, changed_at = now() RETURNING version"
                )
            )
            await conn.execute(
                "INSERT INTO audit_log (actor, action, detail) VALUES ($1, 'units.loaded', $2::text::jsonb)",
                actor,
                f'{{"rows": {rows}, "successions": {links}, "population": {figures}, "version": {version}}}',
            )
    return LoadReport(rows, links, figures, version)


async def _upsert_rows(conn: asyncpg.Connection, rows: list[UnitRow]) -> int:
    changed = 0
    for r in rows:
        status = await conn.execute(
            """INSERT INTO unit_rows (code, valid_from, valid_to, name, full_name, kind, parent_code)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (code, (COALESCE(valid_from, '0001-01-01'::date))) DO UPDATE SET
                   valid_to = excluded.valid_to, name = excluded.name, full_name = excluded.full_name,
                   kind = excluded.kind, parent_code = excluded.parent_code, loaded_at = now()
               WHERE (unit_rows.valid_to, unit_rows.name, unit_rows.full_name, unit_rows.kind, unit_rows.parent_code)
                     IS DISTINCT FROM
                     (excluded.valid_to, excluded.name, excluded.full_name, excluded.kind, excluded.parent_code)""",
            r.code,
            r.valid_from,
            r.valid_to,
            r.name,
            r.full_name,
            r.kind,
            r.parent_code,
        )
        changed += int(status.split()[-1])
    return changed


async def _upsert_links(conn: asyncpg.Connection, links: list[Succession]) -> int:
    changed = 0
    for s in links:
        status = await conn.execute(
            """INSERT INTO unit_successions (old_code, new_code, share, effective, weight)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (old_code, new_code, effective)
               DO UPDATE SET share = excluded.share, weight = excluded.weight
               WHERE (unit_successions.share, unit_successions.weight)
                     IS DISTINCT FROM (excluded.share, excluded.weight)""",
            s.old_code,
            s.new_code,
            s.share,
            s.effective,
            s.weight,
        )
        changed += int(status.split()[-1])
    return changed


async def _upsert_figures(conn: asyncpg.Connection, figures: list[PopulationFigure]) -> int:
    changed = 0
    for p in figures:
        status = await conn.execute(
            """INSERT INTO unit_population (code, as_of, population, area_km2) VALUES ($1, $2, $3, $4)
               ON CONFLICT (code, as_of) DO UPDATE SET population = excluded.population, area_km2 = excluded.area_km2
               WHERE (unit_population.population, unit_population.area_km2)
                     IS DISTINCT FROM (excluded.population, excluded.area_km2)""",
            p.code,
            p.as_of,
            p.population,
            p.area_km2,
        )
        changed += int(status.split()[-1])
    return changed


class RegistryCache:
    """The registry a service holds: loaded at start, reloaded when the stored version
    changes (checked every ``poll_s``, or at once through :meth:`refresh`).

    ``registry`` is None until the first successful load (the service is not ready then).
    """

    def __init__(self, pool: asyncpg.Pool, poll_s: float = 2.0) -> None:
        self._pool = pool
        self._poll_s = poll_s
        self.registry: UnitRegistry | None = None
        self.version: int | None = None
        self._check_started = -math.inf  # monotonic start of the last successful version check
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def refresh(self, seen_after: float | None = None) -> bool:
        """Reload if the stored registry changed. Returns whether the registry in memory changed.

        ``seen_after`` (a ``time.monotonic()`` value, e.g. when a request arrived) skips the
        check when one that *started* after that moment already completed: anything committed
        before the caller saw its data is then known. Concurrent callers queue on the lock, so
        a burst of them costs one or two checks, and none is answered from a check that began
        before a unit file it depends on was loaded.
        """
        async with self._lock:
            if seen_after is not None and self._check_started >= seen_after and self.registry is not None:
                return False
            started = time.monotonic()
            try:
                async with self._pool.acquire() as conn:
                    version = await registry_version(conn)
                    if version == self.version and self.registry is not None:
                        self._check_started = started
                        return False
                    registry = await load_registry(conn)
            except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError, UnitDataError) as exc:
                log.warning("unit registry not loaded", error=str(exc))
                return False
            self._check_started = started
            changed = self.registry is None or registry.version != self.registry.version
            self.registry, self.version = (registry if changed else self.registry), version
            if changed:
                log.info("unit registry loaded", units=len(registry), version=version)
                # The registry and everything loaded before it live as long as the process:
                # moved out of the collector's generations, the full collections that requests
                # allocating thousands of rows trigger stop re-scanning them (a 548-commune
                # score: tens of milliseconds). A replaced registry stays allocated; loads are rare.
                gc.collect()
                gc.freeze()
            return changed

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            await self.refresh()

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="unit-registry-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
