"""From decoded events to Kafka messages: validate, check unit and credential, encode.

Pure: no I/O. :func:`prepare` returns one outcome per event in input order, so a batch can
accept its valid events while reporting each rejected one with its reasons.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from schemas import binding
from schemas.envelope import FieldError, ValidEvent, validate_event
from schemas.sectors import Sector
from services.core.calendar import local_date
from services.core.units import UnitRegistry
from services.runtime.auth import Principal
from services.runtime.kafka import Headers, OutgoingMessage


# Plain (not frozen) slotted dataclasses: one is built per event on the hot path, and a
# frozen dataclass costs five times as much to create. Treat them as immutable.
@dataclass(slots=True)
class Prepared:
    index: int
    id: str
    message: OutgoingMessage


@dataclass(slots=True)
class Rejected:
    index: int
    id: str | None
    status: int  # 422 invalid, 403 not allowed for this credential
    errors: tuple[FieldError, ...]


Outcome = Prepared | Rejected


def kafka_headers(event: ValidEvent) -> Headers:
    """CloudEvents Kafka binding, binary content mode (``schemas.binding``)."""
    env = event.envelope
    names = (*binding.REQUIRED_ATTRIBUTES, *binding.OPTIONAL_ATTRIBUTES)
    return binding.kafka_headers({name: getattr(env, name) for name in names})


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


class UnitChecks:
    """Unit registry checks remembered per (unit, local day): the answer only changes with the
    day, and a batch holds many events of few units."""

    def __init__(self, registry: UnitRegistry) -> None:
        self.registry = registry
        self._answers: dict[tuple[str, dt.date], tuple[str, str] | None] = {}

    def problem(self, unit: str, moment: dt.datetime) -> tuple[str, str] | None:
        key = (unit, local_date(moment))
        if key not in self._answers:
            if len(self._answers) > 50_000:
                self._answers.clear()
            self._answers[key] = self.registry.check(unit, moment)
        return self._answers[key]


def prepare_valid_batch(
    raws: list[Any],
    *,
    sector: Sector,
    checks: UnitChecks,
    principal: Principal,
    topic: str,
) -> list[Outcome]:
    """The batch fast path, for a body :func:`schemas.envelope.batch_is_valid` accepted:
    every event is already known to be valid, so only the unit registry and the credential
    are checked, and headers are built from the validated raw attributes. Any event the fast
    path cannot vouch for goes through :func:`prepare_one` (the reference)."""
    out: list[Outcome] = []
    allowed = principal.units
    for index, raw in enumerate(raws):
        try:
            moment = dt.datetime.fromisoformat(raw["time"])
        except ValueError:
            moment = None
        unit = raw["unit"]
        refused = allowed is not None and unit not in allowed
        if moment is None or refused or checks.problem(unit, moment) is not None:
            out.append(
                prepare_one(index, raw, sector=sector, registry=checks.registry, principal=principal, topic=topic)
            )
            continue
        headers = binding.kafka_headers(raw)  # validated: the raw attributes are the event's
        message = OutgoingMessage(topic=topic, key=unit.encode(), value=orjson.dumps(raw["data"]), headers=headers)
        out.append(Prepared(index, raw["id"], message))
    return out
