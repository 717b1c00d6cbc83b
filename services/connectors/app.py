"""ASGI app of the connector service (``uvicorn services.connectors.app:app``).

Same runtime, keys and durability contract as the sector services: a record is answered
as accepted only once every event derived from it is acknowledged by the broker.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI

from services.connectors.adapters.mapping_store import MappingCache
from services.connectors.routes import claims, dvcqg, edxml
from services.connectors.service import ConnectorContext
from services.connectors.settings import ConnectorSettings
from services.connectors.signatures import DEFAULT_RULE, load_rule
from services.runtime.auth import KeyStore
from services.runtime.db import create_pool
from services.runtime.health import install_operations
from services.runtime.kafka import DurableProducer
from services.runtime.logs import configure_logging
from services.runtime.problems import install_problem_handlers
from services.runtime.ratelimit import RateLimiter
from services.runtime.units import RegistryCache

log = structlog.get_logger(__name__)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = ConnectorSettings()
    configure_logging("connectors", settings.log.level, settings.log.json_output)
    rule = load_rule(Path(settings.signature_rule_path) if settings.signature_rule_path else DEFAULT_RULE)
    pool = await create_pool(settings.database.model_copy(update={"pool_min_size": 0}))
    units = RegistryCache(pool)
    mappings = MappingCache(pool, settings.mappings_refresh_s)
    await units.start()
    await mappings.start()
    producer = DurableProducer(settings.kafka, delivery_timeout_ms=settings.delivery_timeout_ms, client_id="connectors")
    app.state.ctx = ConnectorContext(
        settings=settings,
        pool=pool,
        keys=KeyStore(pool, settings.key_cache_ttl_s),
        units=units,
        mappings=mappings,
        producer=producer,
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        rule=rule,
    )
    log.info("service started", port=settings.port)
    try:
        yield
    finally:
        await mappings.stop()
        await units.stop()
        await asyncio.to_thread(producer.close)
        await pool.close()


def create_app() -> FastAPI:
    app = FastAPI(
        title="Thanh Hoa smart city - connectors",
        version="1.0.0",
        summary="Takes DVCQG dossier sync, edXML documents and health-insurance claim XML as their "
        "senders send them, and publishes the project's CloudEvents durably to Kafka.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    def checks() -> dict[str, Any]:
        ctx: ConnectorContext = app.state.ctx
        return {"kafka": ctx.broker_ready, "postgres": ctx.database_ready, "reference_data": ctx.reference_ready}

    install_operations(app, checks)
    for module in (dvcqg, edxml, claims):
        app.include_router(module.router)
    return app


app = create_app()
