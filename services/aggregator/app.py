"""The aggregator process: the consume loop plus ``/healthz``, ``/readyz`` and ``/metrics``.

``python -m services.aggregator`` serves this app; the lifespan wires the adapters to the
flush service layer and starts the worker; on SIGTERM/SIGINT it lets the current batch
commit before the process exits.
"""

import asyncio
import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import AsyncIterator

import asyncpg
import structlog
from fastapi import FastAPI

from schemas.sectors import SECTORS
from schemas.topics import deadletter_topic, kpi_updates_topic, sector_topic
from services.aggregator.adapters.kafka import GroupConsumer, KafkaDeadLetters, KafkaUpdates
from services.aggregator.adapters.postgres import PgCounterStore, PgOffsetStore
from services.aggregator.domain.decode import Decoder
from services.aggregator.domain.fold import Lineage, registry_lineage
from services.aggregator.flush import Flusher
from services.aggregator.settings import AggregatorSettings
from services.aggregator.worker import Aggregator, WorkerState
from services.core.units import UnitRegistry
from services.runtime.clock import Clock, SystemClock
from services.runtime.db import UNAVAILABLE_ERRORS, create_pool, ping
from services.runtime.health import install_operations
from services.runtime.kafka import DurableProducer
from services.runtime.logs import configure_logging
from services.runtime.problems import install_problem_handlers
from services.runtime.units import RegistryCache

log = structlog.get_logger(__name__)


def lineage_of(units: RegistryCache) -> Lineage:
    """(unit, hour) → the unit and the ancestors it had that day, over the current registry
    (a reloaded registry starts a new memo)."""
    current: list[tuple[UnitRegistry | None, Lineage | None]] = [(None, None)]

    def lineage(code: str, hour: int) -> tuple[str, ...]:
        registry = units.registry
        assert registry is not None
        seen, memo = current[0]
        if registry is not seen or memo is None:
            memo = registry_lineage(registry)
            current[0] = (registry, memo)
        return memo(code, hour)

    return lineage


async def _housekeeping(store: PgCounterStore, settings: AggregatorSettings, clock: Clock) -> None:
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


def consumer_settings(settings: AggregatorSettings) -> dict[str, str | int | bool]:
    return {
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.kafka.session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.kafka.session_timeout_ms // 5),
        "max.poll.interval.ms": 300_000,
        "fetch.wait.max.ms": settings.fetch_wait_max_ms,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        "queued.max.messages.kbytes": 262_144,
        "partition.assignment.strategy": "range",
    }


def build_worker(
    settings: AggregatorSettings, pool: asyncpg.Pool, units: RegistryCache, producer: DurableProducer, clock: Clock
) -> tuple[Aggregator, PgCounterStore]:
    """Wire the adapters to the flush service layer (the aggregator's bootstrap)."""
    prefix = settings.kafka.topic_prefix
    counters = PgCounterStore(pool, settings.group_id)
    offsets = PgOffsetStore(pool, settings.group_id)
    updates = KafkaUpdates(producer, kpi_updates_topic(prefix)) if settings.publish_kpi_updates else None

    def registry() -> UnitRegistry:
        assert units.registry is not None
        return units.registry

    flusher = Flusher(
        counters=counters,
        offsets=offsets,
        dead_letters=KafkaDeadLetters(producer, deadletter_topic(prefix)),
        updates=updates,
        lineage=lineage_of(units),
        today=lambda: clock.now().date(),
        failures=UNAVAILABLE_ERRORS,
    )
    worker: Aggregator

    consumer = GroupConsumer(
        settings.kafka,
        consumer_settings(settings),
        [sector_topic(s, prefix) for s in SECTORS],
        offsets,
        running=lambda: worker.running,
    )
    worker = Aggregator(
        settings, consumer, flusher, Decoder(registry), refresh_units=lambda: units.refresh(seen_after=time.monotonic())
    )
    return worker, counters


def create_app(settings_factory: type[AggregatorSettings] = AggregatorSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = settings_factory()
        configure_logging("aggregator", settings.log.level, settings.log.json_output)
        pool = await create_pool(settings.database, wait_s=60)
        units = RegistryCache(pool)
        await units.start()
        clock = SystemClock(settings.clock.offset_seconds)
        producer = DurableProducer(settings.kafka, client_id="kpi-aggregator")
        worker, counters = build_worker(settings, pool, units, producer, clock)
        app.state.worker, app.state.pool, app.state.producer = worker, pool, producer
        task = asyncio.create_task(worker.run(), name="aggregator")
        task.add_done_callback(_exit_if_failed)
        housekeeping = asyncio.create_task(_housekeeping(counters, settings, clock))
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
