"""The alerts service as a faust-streaming application (one worker process).

- agent ``thresholds`` on ``kpi-updates``: judges every alerting KPI an update touched;
- agent ``silences`` on the sector topics: remembers the last matching event per (family, unit);
- timer ``check_silences``: opens silence alerts (every ``ALERTS_SILENCE_CHECK_S`` wall seconds);
- timer ``sweep`` (and once at start): judges every alerting KPI of every unit (``ALERTS_SWEEP_S``);
- task ``deliver``: the notification outbox (webhooks and the ``alerts`` topic);
- pages ``/healthz``, ``/readyz``, ``/metrics`` on faust's own web server (``ALERTS_PORT``).

faust settings that matter (measured on the embedded Tansu broker):

- ``broker_session_timeout`` from ``KAFKA_SESSION_TIMEOUT_MS`` (6 s in the stack and the
  tests), heartbeat 1/5 of it: a restarted worker rejoins in ~5-10 s instead of ~30 s;
- ``consumer_auto_offset_reset="earliest"``: faust's default is "latest";
- ``processing_guarantee="at_least_once"``: effects are idempotent (``store.py``);
- ``producer_max_batch_size=1``: one record per batch, because Tansu reports a partition's
  end offset as the base offset of its last batch + 1; with multi-record batches faust's
  table recovery stops early (state lost) or fails with a ConsistencyError;
- ``store="memory://"``: tables are rebuilt from their changelog topics at start.
"""

import asyncio
import contextlib
import ssl
from typing import Any

import faust
import structlog
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.kpi import load_registry
from schemas.sectors import SECTORS
from schemas.streams import KpiUpdate
from schemas.topics import TOPICS, alerts_topic, kpi_updates_topic, sector_topic
from services.alerts.clock import clock_for
from services.alerts.notify import TOPIC_TARGET, Deliverer, payload
from services.alerts.rules import load_calendar, load_rules
from services.alerts.settings import AlertsSettings
from services.alerts.worker import AlertsWorker
from services.readmodels.alerts import AlertStore
from services.runtime.db import create_pool, ping
from services.runtime.units import RegistryCache

log = structlog.get_logger(__name__)


def _partitions(base_name: str) -> int:
    return next(t.partitions for t in TOPICS if t.base_name == base_name)


def _credentials(settings: AlertsSettings) -> Any:
    kafka = settings.kafka
    context = ssl.create_default_context(cafile=kafka.ssl_ca_location) if "SSL" in kafka.security_protocol else None
    if kafka.sasl_mechanism:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        return faust.SASLCredentials(
            username=kafka.sasl_username, password=password, mechanism=kafka.sasl_mechanism, ssl_context=context
        )
    return faust.SSLCredentials(context) if context is not None else None


class Runtime:
    """Resources created when the worker starts (pool, registry, store, outbox)."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.settings = settings
        self.kpis = load_registry()
        self.rules = load_rules(
            self.kpis,
            settings.rules_file,
            silence_scale=settings.silence_scale,
            silence_periods=settings.silence_periods,
        )
        self.calendar = load_calendar(settings.holidays_file)
        self.clock = clock_for(settings.clock_file, settings.clock.offset_seconds)
        self.started = asyncio.Event()
        self.worker: AlertsWorker | None = None
        self.deliverer: Deliverer | None = None
        self.units: RegistryCache | None = None

    async def start(self, app: faust.App) -> None:
        settings = self.settings
        pool = await create_pool(settings.database.model_copy(update={"pool_max_size": 5}), wait_s=120)
        self.units = RegistryCache(pool)
        await self.units.start()
        targets = [*settings.webhook_urls(), TOPIC_TARGET + alerts_topic(settings.kafka.topic_prefix)]
        store = AlertStore(pool, targets, payload)

        async def send_topic(topic: str, key: bytes, value: bytes) -> None:
            await app.producer.send_and_wait(topic, key, value, None, None, None)

        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        self.deliverer = Deliverer(
            store,
            self.clock,
            send_topic,
            secret=secret,
            timeout_s=settings.webhook_timeout_s,
            backoff_s=settings.webhook_backoff_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            poll_s=settings.delivery_poll_s,
        )
        self.worker = AlertsWorker(
            rules=self.rules,
            calendar=self.calendar,
            kpis=self.kpis,
            store=store,
            registry=lambda: self.units.registry if self.units else None,
            clock=self.clock,
            on_transition=self.deliverer.wake.set,
        )
        await self.worker.load_live()
        while self.units.registry is None:
            await asyncio.sleep(0.5)
        self.started.set()
        log.info(
            "alerts worker started",
            thresholds=[r.id for r in self.rules.thresholds],
            silences={r.family: r.period_working_hours for r in self.rules.silences},
            webhooks=len(settings.webhook_urls()),
            now=self.clock.now().isoformat(),
        )

    async def ready(self) -> AlertsWorker:
        await self.started.wait()
        assert self.worker is not None
        return self.worker


def _faust_app(settings: AlertsSettings) -> faust.App:
    prefix = settings.kafka.topic_prefix
    session_s = settings.kafka.session_timeout_ms / 1000
    return faust.App(
        f"{prefix}{settings.app_id}",
        broker=[f"kafka://{server.strip()}" for server in settings.kafka.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_s,
        broker_heartbeat_interval=max(0.5, session_s / 5),
        broker_rebalance_timeout=max(6.0, session_s),
        broker_commit_interval=1.0,
        producer_max_batch_size=1,
        producer_acks=-1,
        table_standby_replicas=0,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_allow_declare=True,
        web_enabled=True,
        web_bind=settings.host,
        web_host=settings.host,
        web_port=settings.port,
    )


def _agents(app: faust.App, runtime: Runtime, settings: AlertsSettings) -> None:
    """The agents on kpi-updates and the sector topics, the timers and the outbox task."""
    prefix = settings.kafka.topic_prefix
    updates = app.topic(kpi_updates_topic(prefix), key_serializer="raw", value_serializer="raw")
    sectors = app.topic(*(sector_topic(s, prefix) for s in SECTORS), key_serializer="raw", value_serializer="raw")
    # written by the agent and by the sweep (a timer, outside any stream): the producer's
    # partitioner places keys, so every write of a key lands in the same changelog partition
    threshold_table = app.Table("threshold-state", partitions=_partitions(kpi_updates_topic()), use_partitioner=True)
    seen_table = app.Table("silence-seen", partitions=_partitions(sector_topic(SECTORS[0])))

    @app.task
    async def start() -> None:
        await runtime.start(app)

    @app.task
    async def deliver() -> None:
        await runtime.started.wait()
        assert runtime.deliverer is not None
        await runtime.deliverer.run()

    @app.agent(updates)
    async def thresholds(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            worker = await runtime.ready()
            try:
                update = KpiUpdate.model_validate_json(event.value)
            except ValueError as exc:
                log.warning("malformed kpi update ignored", error=str(exc)[:300])
                continue
            await worker.on_update(update, threshold_table)

    @app.agent(sectors)
    async def silences(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            worker = await runtime.ready()
            headers = event.headers if isinstance(event.headers, dict) else dict(event.headers or {})
            await worker.on_record(headers, event.value, seen_table)

    async def recovered() -> AlertsWorker | None:
        if not runtime.started.is_set() or not app.tables.recovery.completed.is_set():
            return None
        return runtime.worker

    @app.timer(settings.sweep_s)
    async def sweep() -> None:
        if (worker := await recovered()) is not None:
            await worker.sweep(threshold_table)

    @app.task
    async def first_sweep() -> None:
        await runtime.started.wait()
        await app.tables.recovery.completed.wait()
        assert runtime.worker is not None
        await runtime.worker.sweep(threshold_table)

    @app.timer(settings.silence_check_s)
    async def check_silences() -> None:
        if (worker := await recovered()) is not None:
            await worker.check_silences(seen_table)


async def _broker_reachable(settings: AlertsSettings) -> bool:
    host, _, port = settings.kafka.bootstrap_servers.split(",")[0].strip().rpartition(":")
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=2)
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _pages(app: faust.App, runtime: Runtime, settings: AlertsSettings) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics`` on faust's web server."""

    async def checks() -> dict[str, bool]:
        recovered = app.tables.recovery.completed.is_set() and not app.rebalancing
        database = False
        if runtime.started.is_set() and runtime.deliverer is not None:
            database = await ping(runtime.deliverer.store.pool)
        return {
            "worker": runtime.started.is_set() and recovered,
            "postgres": database,
            "kafka": await _broker_reachable(settings),
        }

    @app.page("/healthz")
    class Healthz(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "alive"})

    @app.page("/readyz")
    class Readyz(View):
        async def get(self, request: Request) -> Response:
            status = await checks()
            ready = all(status.values())
            headers = {} if ready else {"Retry-After": "2"}
            return self.json(
                {"status": "ready" if ready else "not ready", "checks": status},
                status=200 if ready else 503,
                headers=headers,
            )

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


def create_app(settings: AlertsSettings) -> tuple[faust.App, Runtime]:
    app = _faust_app(settings)
    runtime = Runtime(settings)
    _agents(app, runtime, settings)
    _pages(app, runtime, settings)
    return app, runtime
