"""Decode one Kafka record (CloudEvents Kafka binding, binary content mode) into an event.

A record that cannot be decoded, has an unknown type, an invalid payload, a type of another
sector than its topic's, or a unit the registry does not know at the event's time is
*poison*: it is returned as :class:`Poison` with the reason, and the caller sends it to the
dead-letter topic. Nothing here raises on bad input.
"""

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from schemas.binding import REQUIRED_HEADERS
from schemas.events import EventSpec, spec_for
from schemas.events.base import EventData
from services.core.calendar import day_number, hour_number
from services.core.units import UnitRegistry

Headers = list[tuple[str, bytes]]


# Record and Decoded are plain (not frozen) slotted dataclasses: one of each is built per
# event on the hot path, and a frozen dataclass costs five times as much to create. Treat
# them as immutable.
@dataclass(slots=True)
class Record:
    """The parts of a Kafka record the aggregator reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    timestamp_ms: int | None = None  # the broker/producer timestamp, for latency metrics


@dataclass(slots=True)
class Decoded:
    record: Record
    event_key: bytes  # BLAKE2b-128 of source NUL id: the deduplication key
    id: str
    source: str
    spec: EventSpec
    data: EventData
    unit: str
    time: dt.datetime
    hour: int  # hours since the epoch (UTC) of the event time


@dataclass(frozen=True, slots=True)
class Poison:
    record: Record
    reason: str
    unit_problem: bool = False  # the unit was unknown or not valid: a newer registry may know it


def event_key(source: str, id_: str) -> bytes:
    """The deduplication key of a CloudEvent: its (source, id) pair, digested to 16 bytes."""
    return hashlib.blake2b(source.encode() + b"\x00" + id_.encode(), digest_size=16).digest()


def _header_map(headers: Headers | None) -> dict[str, bytes]:
    return dict(headers) if headers else {}


class Decoder:
    """Decodes records against the event catalogue and the current unit registry.

    ``registry`` returns the registry to use now (it may be reloaded while the aggregator
    runs). Unit validity is checked per (unit, local day) once and remembered while the
    registry stays the same, which keeps the check off the per-event cost.
    """

    def __init__(self, registry: Callable[[], UnitRegistry]) -> None:
        self.registry = registry
        self._checked_against: UnitRegistry | None = None
        self._unit_checks: dict[tuple[str, int], str | None] = {}

    def decode(self, record: Record) -> Decoded | Poison:
        try:
            return self._decode(record)
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, OverflowError) as exc:
            return Poison(record, f"undecodable record: {type(exc).__name__}: {exc}")

    def _decode(self, record: Record) -> Decoded | Poison:
        h = _header_map(record.headers)
        try:
            id_b, source_b, type_b, time_b, unit_b = (
                h["ce_id"],
                h["ce_source"],
                h["ce_type"],
                h["ce_time"],
                h["ce_unit"],
            )
        except KeyError:
            missing = [n for n in REQUIRED_HEADERS if n not in h]
            return Poison(record, f"missing CloudEvents headers: {', '.join(missing)}")
        if h.get("ce_specversion") != b"1.0":
            return Poison(record, "ce_specversion must be 1.0")
        type_ = type_b.decode()
        spec = spec_for(type_)
        if spec is None:
            return Poison(record, f"unknown event type {type_!r}")
        if record.topic != spec.topic_suffix and not record.topic.endswith("." + spec.topic_suffix):
            return Poison(
                record, f"type {type_!r} belongs to sector {spec.sector.value!r}, not to topic {record.topic!r}"
            )
        time = dt.datetime.fromisoformat(time_b.decode())
        if time.tzinfo is None:
            return Poison(record, "ce_time has no time zone offset")
        unit = unit_b.decode()
        hour = hour_number(time)
        problem = self._unit_problem(unit, time, hour)
        if problem is not None:
            return Poison(record, problem, unit_problem=True)
        if record.value is None:
            return Poison(record, "record has no value (data)")
        try:
            data = spec.model.model_validate_json(record.value)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            return Poison(record, f"invalid data for {type_}: {loc}: {first['msg']}")
        id_ = id_b.decode()
        source = source_b.decode()
        if "\x00" in id_ or "\x00" in source:  # NUL separates the two in the dedupe key
            return Poison(record, "ce_id and ce_source must not contain NUL")
        return Decoded(
            record=record,
            event_key=hashlib.blake2b(source_b + b"\x00" + id_b, digest_size=16).digest(),
            id=id_,
            source=source,
            spec=spec,
            data=data,
            unit=unit,
            time=time,
            hour=hour,
        )

    def _unit_problem(self, unit: str, time: dt.datetime, hour: int) -> str | None:
        registry = self.registry()
        if registry is not self._checked_against:  # reloaded: what was known may have changed
            self._unit_checks.clear()
            self._checked_against = registry
        cache_key = (unit, day_number(hour))
        if cache_key not in self._unit_checks:
            if len(self._unit_checks) > 100_000:
                self._unit_checks.clear()
            problem = registry.check(unit, time)
            self._unit_checks[cache_key] = problem[1] if problem else None
        return self._unit_checks[cache_key]
