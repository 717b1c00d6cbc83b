"""The aggregator process: the consume loop plus ``/healthz``, ``/readyz`` and ``/metrics``.

``python -m services.aggregator`` serves this app; the lifespan starts the worker and, on
SIGTERM/SIGINT, lets its current batch commit before the process exits.
"""

import asyncio
import contextlib
import datetime as dt
import os
import signal
from collections.abc import AsyncIterator
from functools import lru_cache

import structlog
from fastapi import FastAPI

from schemas.units import UnitRegistry
from services.aggregator.adapters.store import CounterStore
from services.aggregator.settings import AggregatorSettings
from services.aggregator.worker import Aggregator, WorkerState
from services.runtime.clock import SystemClock
from services.runtime.db import create_pool, ping
from services.runtime.health import install_operations
from services.runtime.kafka import DurableProducer
from services.runtime.logs import configure_logging
from services.runtime.problems import install_problem_handlers
from services.runtime.units import RegistryCache

log = structlog.get_logger(__name__)


def lineage_of(cache: RegistryCache):  # type: ignore[no-untyped-def]
    """A memoised unit → (unit, ancestors…) lookup over the current registry."""

    @lru_cache(maxsize=4096)
    def lineage(registry_id: int, code: str) -> tuple[str, ...]:
        registry = cache.registry
        assert registry is not None
        return registry.lineage(code)

    return lambda code: lineage(id(cache.registry), code)


async def _housekeeping(store: CounterStore, settings: AggregatorSettings, clock: SystemClock) -> None:
    """Forget deduplication keys older than the horizon, once an hour."""
    while True:
        horizon = clock.now().date() - dt.timedelta(days=settings.dedupe_horizon_days)
        try:
            while await store.delete_expired_dedupe_keys(horizon) > 0:
                await asyncio.sleep(0)
        except Exception as exc:  # housekeeping must never stop the service
            log.warning("dedupe housekeeping failed", error=str(exc))
        await asyncio.sleep(3600)


def _exit_if_failed(task: asyncio.Task[None]) -> None:
    """A worker that died must not leave a process that looks alive: stop the process so its
    supervisor (the dev stack, compose, Kubernetes) starts a fresh one."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("aggregator worker failed; exiting", error=repr(task.exception()))
        os.kill(os.getpid(), signal.SIGTERM)


def create_app(settings_factory: type[AggregatorSettings] = AggregatorSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = settings_factory()
        configure_logging("aggregator", settings.log.level, settings.log.json_output)
        pool = await create_pool(settings.database, wait_s=60)
        units = RegistryCache(pool)
        await units.start()
        clock = SystemClock(settings.clock.offset_seconds)
        store = CounterStore(pool, settings.group_id, lineage_of(units))
        producer = DurableProducer(settings.kafka, client_id="kpi-aggregator")

        def registry() -> UnitRegistry:
            assert units.registry is not None
            return units.registry

        worker = Aggregator(settings, store, registry, producer, clock)
        app.state.worker = worker
        app.state.pool = pool
        app.state.producer = producer
        task = asyncio.create_task(worker.run(), name="aggregator")
        task.add_done_callback(_exit_if_failed)
        housekeeping = asyncio.create_task(_housekeeping(store, settings, clock))
        try:
            yield
        finally:
            worker.stop()
            housekeeping.cancel()
            try:
                async with asyncio.timeout(8):
                    await task
            except TimeoutError:
                log.warning("worker did not stop in time")
            await asyncio.to_thread(producer.close)
            await units.stop()
            await pool.close()

    app = FastAPI(title="Thanh Hoa smart city - KPI aggregator", version="1.0.0", lifespan=lifespan)
    install_problem_handlers(app)

    async def worker_running() -> bool:
        return app.state.worker.state is WorkerState.RUNNING

    async def database() -> bool:
        return await ping(app.state.pool)

    async def broker() -> bool:
        topics = await asyncio.to_thread(app.state.producer.topics)
        return bool(topics)

    install_operations(app, lambda: {"worker": worker_running, "postgres": database, "kafka": broker})
    return app


app = create_app()
