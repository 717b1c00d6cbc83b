"""The CloudEvents 1.0 envelope as this system accepts it, and per-event validation.

The envelope is closed: the CloudEvents context attributes, the ``unit`` extension (the
administrative unit code the event belongs to) and the distributed-tracing extensions. An
unknown attribute is an error rather than something silently forwarded, so that nothing -
personal data included - travels without a contract.

Validation is pure: :func:`validate_event` takes a decoded JSON object and returns either a
:class:`ValidEvent` or a list of :class:`FieldError`. Unit registry checks are made by the
caller, which owns the registry.
"""

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
)

from schemas.events.base import EventData
from schemas.events.catalogue import EventSpec, spec_for, specs_of_sector
from schemas.sectors import Sector

UnitCode = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{2,5}$",
        description="Official administrative unit code (mã đơn vị hành chính).",
        examples=["390"],
    ),
]

CONTEXT_ATTRIBUTES: tuple[str, ...] = (
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "unit",
    "traceparent",
    "tracestate",
)


class CloudEventEnvelope(BaseModel):
    """CloudEvents 1.0 context attributes accepted by the sector services."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$", description="Unique with `source`.")
    source: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00]*$",
        description="URI-reference of the emitting sector system instance.",
        examples=["/thanhhoa/health/his/bv-da-khoa-tinh"],
    )
    type: str = Field(
        min_length=1,
        max_length=128,
        description="vn.gov.thanhhoa.<sector>.<entity>.<verb>",
        examples=["vn.gov.thanhhoa.health.appointment.booked"],
    )
    time: AwareDatetime = Field(description="When it happened (event time), RFC 3339.")
    unit: UnitCode
    subject: str | None = Field(default=None, max_length=128)
    datacontenttype: str | None = Field(
        default=None, pattern=r"^application/json(\s*;.*)?$", description="application/json"
    )
    dataschema: str | None = Field(default=None, max_length=512)
    traceparent: str | None = Field(default=None, max_length=55)
    tracestate: str | None = Field(default=None, max_length=512)
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _representable(cls, value: dt.datetime) -> dt.datetime:
        # years 1 and 9999 overflow when converted to local time or an hour number
        if not 1 < value.year < 9999:
            raise ValueError("time is outside the supported range (years 2-9998)")
        return value


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason an event was rejected: the offending field (dotted path) and why."""

    field: str
    message: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


@dataclass(frozen=True, slots=True)
class ValidEvent:
    """An event that passed envelope and data validation."""

    envelope: CloudEventEnvelope
    spec: EventSpec
    data: EventData

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def unit(self) -> str:
        return self.envelope.unit

    @property
    def time(self) -> dt.datetime:
        return self.envelope.time


def _errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        field = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(event)"
        out.append(FieldError(field=field, message=err["msg"], code=err["type"]))
    return out


def validate_event(raw: object, sector: Sector | None = None) -> ValidEvent | list[FieldError]:
    """Validate one decoded CloudEvent (structured-mode JSON object).

    Returns the validated event, or every problem found: envelope errors first; data errors
    only once the envelope and type are valid (the type decides the data model). When
    ``sector`` is given, types of other sectors are rejected.
    """
    if not isinstance(raw, dict):
        return [FieldError("(event)", "a CloudEvent must be a JSON object", "type_error")]
    # Strict JSON validation: "yes" is not a boolean and "12" is not a number, so what is
    # accepted - and published - always matches the generated JSON Schema.
    try:
        envelope = CloudEventEnvelope.model_validate_json(orjson.dumps(raw), strict=True)
    except (ValidationError, orjson.JSONEncodeError) as exc:
        if isinstance(exc, ValidationError):
            return _errors(exc)
        return [FieldError("(event)", f"not encodable as JSON: {exc}", "json_error")]
    spec = spec_for(envelope.type)
    if spec is None:
        return [FieldError("type", f"unknown event type {envelope.type!r}", "unknown_type")]
    if sector is not None and spec.sector is not sector:
        return [
            FieldError(
                "type",
                f"type {envelope.type!r} belongs to sector {spec.sector.value!r}, not {sector.value!r}",
                "wrong_sector",
            )
        ]
    try:
        data = spec.model.model_validate_json(orjson.dumps(envelope.data), strict=True)
    except ValidationError as exc:
        return _errors(exc, prefix="data.")
    return ValidEvent(envelope=envelope, spec=spec, data=data)


# -- the batch fast path -----------------------------------------------------------------


def _full_event_model(spec: EventSpec) -> Any:
    """The envelope with ``type`` fixed to one event type and ``data`` typed by its model."""
    fields: dict[str, Any] = {"type": (Literal[spec.type], ...), "data": (spec.model, ...)}
    return create_model(f"{spec.model.__name__}_{spec.sector.value}_event", __base__=CloudEventEnvelope, **fields)


@cache
def batch_validator(sector: Sector) -> TypeAdapter[Any]:
    """Validates a whole batched-mode body of one sector in one strict call (a list of a
    union of full-event models discriminated by ``type``). It only answers "all valid or
    not": per-event results and error messages always come from :func:`validate_event`."""
    models = tuple(_full_event_model(spec) for spec in specs_of_sector(sector))
    union: Any = Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007
    adapter: TypeAdapter[Any] = TypeAdapter(list[union])
    return adapter


def batch_is_valid(body: bytes, sector: Sector) -> bool:
    """True when every event of a batched-mode JSON body is valid for ``sector`` (strict)."""
    try:
        batch_validator(sector).validate_json(body, strict=True)
    except ValidationError:
        return False
    return True
