"""The unit registry held in memory by a service, refreshed from PostgreSQL."""

import asyncio
import contextlib

import asyncpg
import structlog

from services.core.units import Unit, UnitRegistry
from services.runtime.db import UNAVAILABLE_ERRORS

log = structlog.get_logger(__name__)


async def load_registry(conn: asyncpg.Connection) -> UnitRegistry:
    """Read the unit registry from PostgreSQL."""
    rows = await conn.fetch(
        "SELECT code, name, full_name, kind, parent_code, valid_from, valid_to, population "
        "FROM units ORDER BY level, code"
    )
    return UnitRegistry.from_units(Unit(**dict(row)) for row in rows)


class RegistryCache:
    """Loads ``units`` at start and every ``refresh_s``; keeps the last good copy.

    ``registry`` is None until the first successful load (the service is not ready then).
    """

    def __init__(self, pool: asyncpg.Pool, refresh_s: float = 60.0) -> None:
        self._pool = pool
        self._refresh_s = refresh_s
        self.registry: UnitRegistry | None = None
        self._task: asyncio.Task[None] | None = None

    async def load(self) -> bool:
        try:
            async with self._pool.acquire() as conn:
                self.registry = await load_registry(conn)
        except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("unit registry not loaded", error=str(exc))
            return False
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s if self.registry else 1.0)
            await self.load()

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._loop(), name="unit-registry-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
