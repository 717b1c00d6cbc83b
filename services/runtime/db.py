"""PostgreSQL access with asyncpg: one pool per process, created in the app's lifespan."""

import asyncio

import asyncpg
import orjson
import structlog

from services.runtime.retry import call_retrying
from services.runtime.settings import DatabaseSettings

log = structlog.get_logger(__name__)

# Errors that mean "the database is not reachable right now" rather than a bug in our SQL.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    # a connection the server dropped in the middle of an operation can surface as "cannot
    # switch to state …; another operation is in progress" on its next use (seen when
    # PostgreSQL is killed under load): the connection is unusable, the database may be fine
    asyncpg.exceptions.InternalClientError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
    )


async def create_pool(settings: DatabaseSettings, *, wait_s: float = 0) -> asyncpg.Pool:
    """Open a pool; with ``wait_s`` > 0, retry until the server answers or time runs out
    (then the last error is raised).

    A pool with ``min_size=0`` opens lazily, so a service can start while PostgreSQL is
    down and become ready when it comes back.
    """

    async def open_pool() -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            settings.url.get_secret_value(),
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            init=_init_connection,
            command_timeout=30,
            max_inactive_connection_lifetime=60,
        )
        assert pool is not None
        return pool

    if wait_s <= 0:
        return await open_pool()
    return await call_retrying("open the database pool", open_pool, UNAVAILABLE_ERRORS, give_up_after_s=wait_s)


async def ping(pool: asyncpg.Pool, timeout_s: float = 2.0) -> bool:
    """True when a connection can run ``SELECT 1`` within the timeout."""
    try:
        async with asyncio.timeout(timeout_s):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        return True
    except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError):
        return False
