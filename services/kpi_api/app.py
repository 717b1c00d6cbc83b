"""The FastAPI app of the KPI API (``uvicorn services.kpi_api.app:app``) and the dashboard."""

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import orjson
import structlog
from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from schemas.kpi import KpiRegistry, load_registry
from services.kpi_api.audit import AccessLog, observe_access
from services.kpi_api.deps import ApiContext
from services.kpi_api.routes import alerts, kpis, operations, units
from services.kpi_api.settings import KpiApiSettings
from services.runtime.auth import KeyStore
from services.runtime.clock import Clock, SystemClock
from services.runtime.db import create_pool, ping
from services.runtime.health import install_operations
from services.runtime.logs import configure_logging
from services.runtime.problems import install_problem_handlers
from services.runtime.ratelimit import RateLimiter
from services.runtime.units import RegistryCache

log = structlog.get_logger(__name__)
STATIC = Path(__file__).parent / "static"

# The dashboard is a static page with scripts from its own origin only: no inline script,
# no framing, no third-party anything (the deployment may be offline).
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


async def mirror_registry(pool: asyncpg.Pool, registry: KpiRegistry) -> None:
    """Keep the kpi_definitions table equal to the registry file (for SQL users)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM kpi_definitions WHERE NOT (id = ANY($1::text[]))", [k.id for k in registry.kpis]
        )
        for kpi in registry.kpis:
            await conn.execute(
                """INSERT INTO kpi_definitions (id, version, definition) VALUES ($1, $2, $3::text::jsonb)
                   ON CONFLICT (id) DO UPDATE SET version = excluded.version, definition = excluded.definition,
                       loaded_at = now()
                   WHERE kpi_definitions.definition IS DISTINCT FROM excluded.definition""",
                kpi.id,
                registry.version,
                orjson.dumps(kpi.model_dump(mode="json")).decode(),
            )


def create_app(settings_factory: Callable[[], KpiApiSettings] = KpiApiSettings, clock: Clock | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = settings_factory()
        configure_logging("kpi-api", settings.log.level, settings.log.json_output)
        registry = load_registry()
        pool = await create_pool(settings.database.model_copy(update={"pool_min_size": 0}))
        unit_cache = RegistryCache(pool)
        await unit_cache.start()
        try:
            await mirror_registry(pool, registry)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("kpi registry not mirrored to PostgreSQL", error=str(exc))
        access = AccessLog(pool)
        access.start()
        app.state.ctx = ApiContext(
            pool=pool,
            keys=KeyStore(pool, settings.key_cache_ttl_s),
            units=unit_cache,
            kpis=registry,
            clock=clock or SystemClock(settings.clock.offset_seconds),
            limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
            access=access,
        )
        log.info("kpi api started", port=settings.port, kpis=len(registry.kpis), version=registry.version)
        try:
            yield
        finally:
            await access.stop()
            await unit_cache.stop()
            await pool.close()

    app = FastAPI(
        title="Thanh Hoa smart city - KPI API",
        version="1.0.0",
        summary="E-government KPIs for operators: series, rankings, scorecards, the Decision 766 "
        "style score, overdue dossiers, projects. JSON or CSV (Accept: text/csv).",
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    async def database() -> bool:
        return await ping(app.state.ctx.pool)

    async def unit_registry() -> bool:
        return app.state.ctx.units.registry is not None

    install_operations(
        app,
        lambda: {"postgres": database, "unit_registry": unit_registry},
        observers=[observe_access],
        headers=SECURITY_HEADERS,
    )
    app.include_router(kpis.router)
    app.include_router(units.router)
    app.include_router(operations.router)
    app.include_router(alerts.router)

    _mount_dashboard(app)
    return app


def _mount_dashboard(app: FastAPI) -> None:
    """The operators' dashboard: a static page and its assets, from this origin only."""
    if not (STATIC / "index.html").exists():
        return
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")


app = create_app()
