"""From decoded events to Kafka messages: validate, check unit and credential, encode.

Pure: no I/O. :func:`prepare` returns one outcome per event in input order, so a batch can
accept its valid events while reporting each rejected one with its reasons.
"""

from dataclasses import dataclass
from typing import Any

import orjson

from schemas.envelope import FieldError, ValidEvent, validate_event
from schemas.sectors import Sector
from schemas.units import UnitRegistry
from services.runtime.auth import Principal
from services.runtime.kafka import Headers, OutgoingMessage

# CloudEvents attributes carried as Kafka headers (binary content mode), in this order.
_OPTIONAL_HEADERS = ("subject", "dataschema", "traceparent", "tracestate")


@dataclass(frozen=True, slots=True)
class Prepared:
    index: int
    id: str
    message: OutgoingMessage


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    id: str | None
    status: int  # 422 invalid, 403 not allowed for this credential
    errors: tuple[FieldError, ...]


Outcome = Prepared | Rejected


def kafka_headers(event: ValidEvent) -> Headers:
    """CloudEvents Kafka binding, binary content mode: ``ce_*`` headers plus content-type."""
    env = event.envelope
    headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", env.id.encode()),
        ("ce_source", env.source.encode()),
        ("ce_type", env.type.encode()),
        ("ce_time", env.time.isoformat().encode()),
        ("ce_unit", env.unit.encode()),
        ("content-type", b"application/json"),
    ]
    for name in _OPTIONAL_HEADERS:
        value = getattr(env, name)
        if value is not None:
            headers.append((f"ce_{name}", value.encode()))
    return headers


def _raw_id(raw: Any) -> str | None:
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def prepare_one(
    index: int,
    raw: Any,
    *,
    sector: Sector,
    registry: UnitRegistry,
    principal: Principal,
    topic: str,
) -> Outcome:
    """Validate one decoded event and encode it for Kafka, or say why it is rejected."""
    result = validate_event(raw, sector)
    if isinstance(result, list):
        return Rejected(index, _raw_id(raw), 422, tuple(result))
    unit = result.envelope.unit
    problem = registry.check(unit, result.envelope.time)
    if problem is not None:
        return Rejected(index, result.id, 422, (FieldError("unit", problem[1], problem[0]),))
    if principal.units is not None and unit not in principal.units:
        return Rejected(
            index,
            result.id,
            403,
            (FieldError("unit", f"this credential may not send events for unit {unit!r}", "forbidden_unit"),),
        )
    message = OutgoingMessage(
        topic=topic,
        key=unit.encode(),
        value=orjson.dumps(result.envelope.data),
        headers=kafka_headers(result),
    )
    return Prepared(index, result.id, message)


def prepare(
    raws: list[Any],
    *,
    sector: Sector,
    registry: UnitRegistry,
    principal: Principal,
    topic: str,
) -> list[Outcome]:
    """:func:`prepare_one` for every event of a request, in order."""
    return [
        prepare_one(i, raw, sector=sector, registry=registry, principal=principal, topic=topic)
        for i, raw in enumerate(raws)
    ]
