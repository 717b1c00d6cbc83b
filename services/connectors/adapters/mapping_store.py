"""The mapping tables in PostgreSQL: loading a province's CSV file, and the copy a service
holds in memory (refreshed periodically, like the unit registry)."""

import asyncio
import contextlib
from pathlib import Path

import asyncpg
import structlog

from services.connectors.mappings import KINDS, MappingFileError, MappingRow, Mappings, parse_rows
from services.runtime.db import UNAVAILABLE_ERRORS

log = structlog.get_logger(__name__)


async def load_mappings(conn: asyncpg.Connection, kind: str, path: Path | str) -> int:
    """Replace every mapping of ``kind`` with the rows of the CSV file at ``path``, in one
    transaction; returns the number of rows loaded. Raises MappingFileError for a bad file
    or a unit code that is not in the unit registry (nothing is changed then)."""
    content = await asyncio.to_thread(Path(path).read_text, encoding="utf-8-sig")
    rows = parse_rows(kind, content)
    units = {r["code"] for r in await conn.fetch("SELECT code FROM units")}
    unknown = sorted({r.unit_code for r in rows if r.unit_code is not None and r.unit_code not in units})
    if unknown:
        raise MappingFileError(f"{kind}: unit code(s) not in the unit registry: {', '.join(unknown)}")
    async with conn.transaction():
        await conn.execute("DELETE FROM connector_mappings WHERE kind = $1", kind)
        await conn.executemany(
            "INSERT INTO connector_mappings (kind, key, unit_code, sector, flag, label) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [(r.kind, r.key, r.unit_code, r.sector, r.flag, r.label) for r in rows],
        )
    log.info("mappings loaded", kind=kind, rows=len(rows))
    return len(rows)


async def load_directory(conn: asyncpg.Connection, directory: Path | str) -> dict[str, int]:
    """Load every ``<kind>.csv`` present in ``directory`` (e.g. the starter set)."""
    loaded: dict[str, int] = {}
    for kind in KINDS:
        path = Path(directory) / f"{kind}.csv"
        if path.exists():
            loaded[kind] = await load_mappings(conn, kind, path)
    return loaded


async def read_mappings(conn: asyncpg.Connection) -> Mappings:
    rows = await conn.fetch("SELECT kind, key, unit_code, sector, flag, label FROM connector_mappings")
    return Mappings.from_rows(MappingRow(**dict(r)) for r in rows)


class MappingCache:
    """Loads the mappings at start and every ``refresh_s``; keeps the last good copy.
    ``mappings`` is None until the first successful load (the service is not ready then)."""

    def __init__(self, pool: asyncpg.Pool, refresh_s: float = 30.0) -> None:
        self._pool = pool
        self._refresh_s = refresh_s
        self.mappings: Mappings | None = None
        self._task: asyncio.Task[None] | None = None

    async def load(self) -> bool:
        try:
            async with self._pool.acquire() as conn:
                self.mappings = await read_mappings(conn)
        except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("connector mappings not loaded", error=str(exc))
            return False
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s if self.mappings else 1.0)
            await self.load()

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._loop(), name="connector-mappings-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
