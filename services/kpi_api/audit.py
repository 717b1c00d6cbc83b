"""Audit of operator access: one ``audit_log`` row per authenticated KPI API request.

Requests only append to an in-memory buffer; a background task writes the buffer in one
INSERT every second (or when it holds 500 rows), so auditing costs the request nothing. A
crash can lose at most the last second of access records - never a key change, which is
audited in the same transaction as the change itself.
"""

import asyncio
import contextlib
import datetime as dt

import asyncpg
import orjson
import structlog
from starlette.types import Scope

log = structlog.get_logger(__name__)


class AccessLog:
    def __init__(self, pool: asyncpg.Pool, flush_every_s: float = 1.0, max_buffer: int = 500) -> None:
        self.pool = pool
        self.flush_every_s = flush_every_s
        self.max_buffer = max_buffer
        self._rows: list[tuple[dt.datetime, str, str, str]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def record(self, key_id: str, label: str, method: str, path: str, status: int) -> None:
        detail = orjson.dumps({"method": method, "path": path, "status": status, "label": label}).decode()
        self._rows.append((dt.datetime.now(dt.UTC), f"operator:{key_id}", key_id, detail))
        if len(self._rows) >= self.max_buffer:
            self._wake.set()

    async def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            async with self.pool.acquire() as conn:
                await conn.executemany(
                    "INSERT INTO audit_log (at, actor, action, key_id, detail) "
                    "VALUES ($1, $2, 'operator.access', $3, $4::text::jsonb)",
                    rows,
                )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("access audit not written; will retry", rows=len(rows), error=type(exc).__name__)
            self._rows = rows + self._rows  # keep them for the next attempt

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_every_s)
            self._wake.clear()
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="access-audit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


def observe_access(scope: Scope, status: int, _elapsed_s: float) -> None:
    """Record every request that authenticated an operator (``request.state.principal``)."""
    principal = scope.get("state", {}).get("principal")
    app = scope.get("app")
    access = getattr(getattr(getattr(app, "state", None), "ctx", None), "access", None)
    if principal is not None and access is not None:
        access.record(principal.key_id, principal.label, scope["method"], scope["path"], status)
