"""The KPI API in-process (FastAPI's TestClient) against a test database, as an operator."""

import asyncio
import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from fastapi.testclient import TestClient


async def operator_key(dsn: str, scope: str = "38", label: str = "test") -> str:
    from services.runtime.auth import create_key

    conn = await asyncpg.connect(dsn)
    try:
        return (await create_key(conn, kind="operator", label=label, scope_unit=scope)).key
    finally:
        await conn.close()


@contextmanager
def operator_client(dsn: str, now: dt.datetime, scope: str = "38") -> Iterator[TestClient]:
    """A client of the API on ``dsn`` with its clock at ``now`` and a key scoped to ``scope``;
    the rate limit lifted (tests ask fast; limits are tested elsewhere)."""
    from services.kpi_api.app import create_app
    from services.runtime.clock import FixedClock

    key = asyncio.run(operator_key(dsn, scope))
    os.environ["DATABASE_URL"] = dsn
    os.environ["KPI_API_RATE_LIMIT_PER_S"] = "1000000"
    os.environ["KPI_API_RATE_LIMIT_BURST"] = "1000000"
    with TestClient(create_app(clock=FixedClock(now))) as client:
        client.headers["authorization"] = f"Bearer {key}"
        yield client
