"""The FastAPI app of a sector service: ``POST /v1/events`` (CloudEvents HTTP binding).

Contract of an answer: an event is reported ``accepted`` only after the broker acknowledged
it with acks=all from the idempotent producer. If the broker does not acknowledge an event
in time the answer is 503 with ``Retry-After`` and nothing unacknowledged is called accepted.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import Counter, Histogram

from schemas.envelope import batch_is_valid
from schemas.ingest_api import BatchResultPublic, IngestResultPublic
from schemas.sectors import Sector
from schemas.topics import sector_topic
from services.core.units import UnitRegistry
from services.ingest import binding
from services.ingest.pipeline import Outcome, Prepared, Rejected, UnitChecks, prepare, prepare_valid_batch
from services.ingest.settings import IngestSettings
from services.runtime.auth import KeyStore, Principal
from services.runtime.db import create_pool, ping
from services.runtime.health import install_operations
from services.runtime.kafka import BrokerUnavailable, DurableProducer
from services.runtime.logs import configure_logging
from services.runtime.problems import (
    Forbidden,
    InvalidEvent,
    Unavailable,
    install_problem_handlers,
    problem_response,
    problem_responses,
    read_body,
)
from services.runtime.ratelimit import RateLimiter
from services.runtime.units import RegistryCache

log = structlog.get_logger(__name__)

EVENTS = Counter("ingest_events_total", "Events by outcome", ["sector", "outcome"])
PUBLISH_SECONDS = Histogram(
    "ingest_publish_seconds",
    "Time from produce to broker acknowledgement of a request's events",
    ["sector"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@dataclass(slots=True)
class IngestContext:
    """Everything a request needs, built once in the lifespan."""

    sector: Sector
    settings: IngestSettings
    topic: str
    pool: asyncpg.Pool
    keys: KeyStore
    units: RegistryCache
    producer: DurableProducer
    limiter: RateLimiter

    _checks: UnitChecks | None = None

    def unit_checks(self, registry: UnitRegistry) -> UnitChecks:
        """Cached unit checks, rebuilt whenever the registry is reloaded."""
        if self._checks is None or self._checks.registry is not registry:
            self._checks = UnitChecks(registry)
        return self._checks

    async def broker_ready(self) -> bool:
        topics = await asyncio.to_thread(self.producer.topics)
        return self.topic in topics

    async def database_ready(self) -> bool:
        return await ping(self.pool)

    async def registry_ready(self) -> bool:
        return self.units.registry is not None


def create_app(sector: Sector, settings_factory: Callable[[], IngestSettings]) -> FastAPI:
    """Build the app of one sector service; settings are read when the app starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = settings_factory()
        configure_logging(f"{sector.value}-service", settings.log.level, settings.log.json_output)
        pool = await create_pool(settings.database.model_copy(update={"pool_min_size": 0}))
        units = RegistryCache(pool)
        await units.start()
        producer = DurableProducer(
            settings.kafka,
            delivery_timeout_ms=settings.delivery_timeout_ms,
            client_id=f"{sector.value}-service",
        )
        app.state.ctx = IngestContext(
            sector=sector,
            settings=settings,
            topic=sector_topic(sector, settings.kafka.topic_prefix),
            pool=pool,
            keys=KeyStore(pool, settings.key_cache_ttl_s),
            units=units,
            producer=producer,
            limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        )
        log.info("service started", sector=sector.value, port=settings.port)
        try:
            yield
        finally:
            await units.stop()
            await asyncio.to_thread(producer.close)
            await pool.close()

    app = FastAPI(
        title=f"Thanh Hoa smart city - {sector.value} ingestion",
        version="1.0.0",
        summary=f"Accepts CloudEvents from {sector.value} sector systems and makes them durable in Kafka.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    def checks() -> dict[str, Any]:
        ctx: IngestContext = app.state.ctx
        return {
            "kafka": ctx.broker_ready,
            "postgres": ctx.database_ready,
            "unit_registry": ctx.registry_ready,
        }

    install_operations(app, checks)
    _add_events_route(app, sector)
    return app


def _add_events_route(app: FastAPI, sector: Sector) -> None:
    @app.post(
        "/v1/events",
        summary="Send CloudEvents (binary, structured or batched mode)",
        status_code=202,
        response_model=IngestResultPublic,
        responses={
            200: {"model": BatchResultPublic, "description": "Batched mode: one result per event."},
            **problem_responses(400, 401, 403, 413, 415, 422, 429, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    binding.STRUCTURED: {"schema": {"type": "object"}},
                    binding.BATCH: {"schema": {"type": "array", "items": {"type": "object"}}},
                    binding.JSON: {
                        "schema": {"type": "object"},
                        "description": "Binary mode: the event's data, with ce-* headers.",
                    },
                },
            }
        },
    )
    async def post_events(request: Request) -> Response:
        arrived = time.monotonic()
        ctx: IngestContext = request.app.state.ctx
        principal = await ctx.keys.authenticate(request.headers.get("authorization"))
        _authorize(principal, sector)
        ctx.limiter.acquire(principal.key_id)
        mode = binding.classify(request.headers.get("content-type"), request.headers)
        body = await read_body(request, ctx.settings.max_body_bytes)
        if mode is binding.Mode.BATCH:
            raws = binding.parse_batch(body, ctx.settings.max_batch_events)
        elif mode is binding.Mode.STRUCTURED:
            raws = [binding.parse_structured(body)]
        else:
            raws = [binding.parse_binary(request.headers, body)]
        fast = mode is binding.Mode.BATCH and batch_is_valid(body, sector)
        outcomes = _prepare(ctx, raws, principal, fast)
        if any(_unit_rejected(o) for o in outcomes):
            checked = ctx.units.registry
            await ctx.units.refresh(seen_after=arrived)  # a unit file may have been loaded a moment ago
            if ctx.units.registry is not checked:
                outcomes = _prepare(ctx, raws, principal, fast)
        delivered = await _publish(ctx, outcomes)
        if mode is binding.Mode.BATCH:
            return _batch_response(request, outcomes, delivered)
        return _single_response(outcomes[0], delivered)


def _prepare(ctx: IngestContext, raws: list[Any], principal: Principal, fast: bool) -> list[Outcome]:
    registry = ctx.units.registry
    if registry is None:
        raise Unavailable("the unit registry is not loaded yet")
    if fast:
        checks = ctx.unit_checks(registry)
        return prepare_valid_batch(raws, sector=ctx.sector, checks=checks, principal=principal, topic=ctx.topic)
    return prepare(raws, sector=ctx.sector, registry=registry, principal=principal, topic=ctx.topic)


def _unit_rejected(outcome: Outcome) -> bool:
    """Rejected because of its unit: a registry reloaded since may know better."""
    return isinstance(outcome, Rejected) and any(e.code in ("unknown_unit", "unit_not_valid") for e in outcome.errors)


def _authorize(principal: Principal, sector: Sector) -> None:
    if principal.kind != "ingest":
        raise Forbidden("operator credentials cannot send events")
    if principal.sector != sector.value:
        raise Forbidden(f"this credential sends {principal.sector!r} events, not {sector.value!r} events")


async def _publish(ctx: IngestContext, outcomes: list[Outcome]) -> dict[int, bool]:
    """Publish the prepared events; map event index to whether the broker acknowledged it."""
    prepared = [o for o in outcomes if isinstance(o, Prepared)]
    if not prepared:
        return {}
    with PUBLISH_SECONDS.labels(ctx.sector.value).time():
        try:
            errors = await ctx.producer.publish([p.message for p in prepared])
        except BrokerUnavailable as exc:  # the local queue refused the events: none is durable
            log.warning("broker refused events", events=len(prepared), error=str(exc))
            raise Unavailable("the broker cannot take events now; nothing was accepted") from exc
    delivered = {p.index: err is None for p, err in zip(prepared, errors, strict=True)}
    failed = len(delivered) - sum(delivered.values())
    EVENTS.labels(ctx.sector.value, "accepted").inc(len(delivered) - failed)
    if failed:
        EVENTS.labels(ctx.sector.value, "unavailable").inc(failed)
        first = next(err for err in errors if err is not None)
        log.warning("broker did not acknowledge events", failed=failed, error=str(first))
    rejected = len(outcomes) - len(prepared)
    if rejected:
        EVENTS.labels(ctx.sector.value, "rejected").inc(rejected)
    return delivered


def _single_response(outcome: Outcome, delivered: dict[int, bool]) -> Response:
    if isinstance(outcome, Rejected):
        errors = [e.as_dict() for e in outcome.errors]
        if outcome.status == 403:
            raise Forbidden(errors[0]["message"], errors=errors)
        raise InvalidEvent(f"event {outcome.id or '(no id)'} is invalid", errors=errors)
    if not delivered.get(outcome.index):
        raise Unavailable("the broker did not acknowledge the event; nothing was accepted")
    return Response(
        IngestResultPublic(id=outcome.id).model_dump_json(),
        status_code=202,
        media_type="application/json",
    )


def _batch_response(request: Request, outcomes: list[Outcome], delivered: dict[int, bool]) -> Response:
    results: list[dict[str, Any]] = []
    counts = {"accepted": 0, "rejected": 0, "unavailable": 0}
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            status = "rejected"
            errors = [e.as_dict() for e in outcome.errors]
        else:
            status = "accepted" if delivered.get(outcome.index) else "unavailable"
            errors = []
        counts[status] += 1
        results.append({"index": outcome.index, "id": outcome.id, "status": status, "errors": errors})
    body = {**counts, "results": results}
    if counts["unavailable"]:
        error = Unavailable(
            f"the broker did not acknowledge {counts['unavailable']} event(s); retry those "
            "marked 'unavailable' (events marked 'accepted' are durable)",
        )
        error.extra = body
        return problem_response(error, request.url.path)
    return Response(orjson.dumps(body), status_code=200, media_type="application/json")
