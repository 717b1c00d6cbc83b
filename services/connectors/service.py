"""What every connector route does with derived events: validate each exactly as a sector
service does (``services.ingest.pipeline.prepare_one``), publish them durably, and say per
record whether everything derived from it is durable.

A record is ``accepted`` only when every event derived from it was acknowledged by the
broker (acks=all, idempotent producer); ``rejected`` when one of its events is invalid
(then none of its events is published); ``unavailable`` when the broker did not
acknowledge one of them in time (the sender retries; deterministic event ids make the
retry count once).
"""

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg
import orjson
import structlog
from fastapi import Request
from fastapi.responses import Response
from prometheus_client import Counter

from schemas.connectors_api import ConnectorAnswerPublic
from schemas.sectors import Sector
from schemas.topics import sector_topic
from services.connectors.adapters.mapping_store import MappingCache
from services.connectors.common import Event
from services.connectors.mappings import Mappings
from services.connectors.settings import ConnectorSettings
from services.connectors.signatures import SignerRule
from services.ingest.pipeline import Prepared, prepare_one
from services.runtime.auth import KeyStore, Principal
from services.runtime.db import ping
from services.runtime.kafka import BrokerUnavailable, DurableProducer
from services.runtime.problems import (
    Forbidden,
    Unavailable,
    UnsupportedMediaType,
    problem_responses,
    read_body,
)
from services.runtime.ratelimit import RateLimiter
from services.runtime.units import RegistryCache

log = structlog.get_logger(__name__)

RECORDS = Counter("connector_records_total", "Records by format and outcome", ["format", "outcome"])
EVENTS = Counter("connector_events_total", "Events published by format", ["format"])

Status = Literal["accepted", "rejected", "unavailable"]


@dataclass(slots=True)
class Outcome:
    """The answer for one record. ``ref`` is an identifier that is never personal."""

    index: int
    ref: str | None
    status: Status = "accepted"
    errors: list[dict[str, str]] = field(default_factory=list)
    events: int = 0

    def reject(self, error: dict[str, str]) -> "Outcome":
        self.status = "rejected"
        self.errors.append(error)
        return self


@dataclass(slots=True)
class ConnectorContext:
    """Everything a request needs, built once in the lifespan."""

    settings: ConnectorSettings
    pool: asyncpg.Pool
    keys: KeyStore
    units: RegistryCache
    mappings: MappingCache
    producer: DurableProducer
    limiter: RateLimiter
    rule: SignerRule

    def topic(self, sector: str) -> str:
        return sector_topic(sector, self.settings.kafka.topic_prefix)

    def current_mappings(self) -> Mappings:
        if self.mappings.mappings is None or self.units.registry is None:
            raise Unavailable("the mappings or the unit registry are not loaded yet")
        return self.mappings.mappings

    async def broker_ready(self) -> bool:
        topics = await asyncio.to_thread(self.producer.topics)
        return all(self.topic(s) in topics for s in Sector)

    async def database_ready(self) -> bool:
        return await ping(self.pool)

    async def reference_ready(self) -> bool:
        return self.units.registry is not None and self.mappings.mappings is not None


async def authenticate(ctx: ConnectorContext, request: Request, session: str | None = None) -> Principal:
    """A ``connector`` key from ``Authorization: Bearer``, or - for DVCQG envelopes, whose
    senders put their credential in ``session`` - from that field."""
    header = request.headers.get("authorization")
    if header is None and session:
        header = f"Bearer {session}"
    principal = await ctx.keys.authenticate(header)
    if principal.kind != "connector":
        raise Forbidden(
            "only connector credentials may send to the connectors (smartcity keys create --kind connector)"
        )
    ctx.limiter.acquire(principal.key_id)
    return principal


def _prepare(ctx: ConnectorContext, principal: Principal, events: list[Event]) -> list[Prepared] | list[dict[str, str]]:
    registry = ctx.units.registry
    if registry is None:
        raise Unavailable("the unit registry is not loaded yet")
    prepared: list[Prepared] = []
    errors: list[dict[str, str]] = []
    for index, event in enumerate(events):
        outcome = prepare_one(
            index,
            event.raw(),
            sector=Sector(event.sector),
            registry=registry,
            principal=principal,
            topic=ctx.topic(event.sector),
        )
        if isinstance(outcome, Prepared):
            prepared.append(outcome)
        else:
            errors += [{**e.as_dict(), "field": f"{event.entity}.{event.verb}: {e.field}"} for e in outcome.errors]
    return errors if errors else prepared


async def publish(
    ctx: ConnectorContext, principal: Principal, fmt: str, groups: list[tuple[Outcome, list[Event]]]
) -> None:
    """Validate and publish each record's events; set each outcome's status (in place)."""
    batches: list[tuple[Outcome, list[Prepared]]] = []
    for outcome, events in groups:
        if outcome.status != "accepted":
            continue
        result = _prepare(ctx, principal, events)
        if result and isinstance(result[0], dict):
            outcome.status, outcome.errors = "rejected", [e for e in result if isinstance(e, dict)]
        else:
            batches.append((outcome, [p for p in result if isinstance(p, Prepared)]))
    messages = [p.message for _, prepared in batches for p in prepared]
    errors: list[Any] = []
    if messages:
        try:
            errors = await ctx.producer.publish(messages)
        except BrokerUnavailable as exc:
            log.warning("broker refused events", events=len(messages), error=str(exc))
            errors = [exc] * len(messages)
    position = 0
    for outcome, prepared in batches:
        mine = errors[position : position + len(prepared)]
        position += len(prepared)
        outcome.events = len(prepared)
        if any(err is not None for err in mine):
            outcome.status = "unavailable"
            outcome.errors = [
                {"field": "(record)", "message": "the broker did not acknowledge in time; retry", "code": "unavailable"}
            ]
    delivered = sum(o.events for o, _ in batches if o.status == "accepted")
    EVENTS.labels(fmt).inc(delivered)
    for outcome, _ in groups:
        RECORDS.labels(fmt, outcome.status).inc()


XML_TYPES = frozenset({"application/xml", "text/xml"})


# The OpenAPI of an XML request body and the answers of the XML routes (edXML, claims).
XML_BODY = {"required": True, "content": {t: {"schema": {"type": "string"}} for t in sorted(XML_TYPES)}}


def xml_route(rejected: str) -> dict[str, Any]:
    """``responses`` and ``openapi_extra`` of an XML route; ``rejected`` describes its 422."""
    return {
        "response_model": ConnectorAnswerPublic,
        "responses": {
            422: {"model": ConnectorAnswerPublic, "description": rejected},
            503: {"model": ConnectorAnswerPublic, "description": "Not durable: resend"},
            **problem_responses(401, 403, 413, 415, 429),
        },
        "openapi_extra": {"requestBody": XML_BODY},
    }


async def xml_arrival(request: Request) -> tuple[ConnectorContext, Principal, bytes]:
    """An XML route's request: its key, an XML content type (415 otherwise), the body."""
    ctx: ConnectorContext = request.app.state.ctx
    principal = await authenticate(ctx, request)
    kind = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if kind not in XML_TYPES:
        raise UnsupportedMediaType(f"send XML (Content-Type application/xml or text/xml), not {kind or '(none)'!r}")
    return ctx, principal, await read_body(request, ctx.settings.max_body_bytes)


def answer_response(status: int, answer: dict[str, Any]) -> Response:
    """The JSON answer of an XML route; a 503 asks to resend after a few seconds."""
    headers = {"Retry-After": "5"} if status == 503 else {}
    return Response(orjson.dumps(answer), status_code=status, media_type="application/json", headers=headers)


def results_answer(outcomes: list[Outcome]) -> tuple[int, dict[str, Any]]:
    """HTTP status and body of an edXML or claims answer, one result per record: 503
    (resend) when a record is not durable, 422 when every record was rejected, else 200."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("accepted", "rejected", "unavailable")}
    results = [
        {"index": o.index, "ref": o.ref, "status": o.status, "events": o.events, "errors": o.errors} for o in outcomes
    ]
    status = 503 if counts["unavailable"] else 422 if outcomes and counts["rejected"] == len(outcomes) else 200
    return status, {**counts, "results": results}
