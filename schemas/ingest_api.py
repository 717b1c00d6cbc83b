"""Payloads of the sector services' HTTP API (``POST /v1/events``)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EventErrorPublic(BaseModel):
    """Why one event was rejected: the field (dotted path into the event) and the reason."""

    model_config = ConfigDict(frozen=True)

    field: str = Field(examples=["data.channel"])
    message: str = Field(examples=["Input should be 'online', 'counter' or 'post'"])
    code: str = Field(examples=["literal_error"])


class EventResultPublic(BaseModel):
    """The fate of one event of a request."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(description="Position of the event in the request (0 for single events).")
    id: str | None = Field(description="The event's `id`, when it had a readable one.")
    status: Literal["accepted", "rejected", "unavailable"] = Field(
        description="accepted: durable in Kafka. rejected: invalid or not allowed, do not "
        "retry unchanged. unavailable: the broker did not acknowledge it, retry later."
    )
    errors: list[EventErrorPublic] = Field(default_factory=list)


class IngestResultPublic(BaseModel):
    """Answer to a single event (binary or structured mode): 202 once durable."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: Literal["accepted"] = "accepted"


class BatchResultPublic(BaseModel):
    """Answer to a batch: one result per event, in request order."""

    model_config = ConfigDict(frozen=True)

    accepted: int
    rejected: int
    unavailable: int = 0
    results: list[EventResultPublic]


class ProblemPublic(BaseModel):
    """RFC 9457 problem details, with per-field errors where they apply."""

    type: str
    title: str
    status: int
    detail: str
    retriable: bool = False
    instance: str | None = None
    errors: list[EventErrorPublic] | None = None
