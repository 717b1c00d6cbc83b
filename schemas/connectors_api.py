"""Payloads the connector service answers with (``services/connectors``, its OpenAPI).

DVCQG senders read ``error_code`` and ``message`` (the national portal's answer); the
per-record ``results`` are an addition they ignore and an operator can read. edXML and
claim senders get a result per message or visit record.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FieldErrorPublic(BaseModel):
    """Why a record was not accepted: the field (never its value) and the reason."""

    model_config = ConfigDict(frozen=True)

    field: str = Field(examples=["NgayTiepNhan"])
    message: str = Field(examples=["is not a date in the form yyyyMMddHHmmss"])
    code: str = Field(examples=["invalid_date"])


class DvcqgRecordPublic(BaseModel):
    """The fate of one dossier or progress step of a request, in request order."""

    model_config = ConfigDict(frozen=True)

    index: int
    MaHoSo: str | None = Field(description="The dossier number as used in events (a digest when unusable).")
    error_code: str = Field(
        description="0 accepted (durable); 3 already exists (add URL; its state was taken); "
        "-1 rejected (fix, do not resend unchanged); -2 not durable yet (resend)."
    )
    message: str
    errors: list[FieldErrorPublic] = Field(default_factory=list)


class DvcqgAnswerPublic(BaseModel):
    """The answer the one-stop systems expect from the portal, plus per-record results."""

    model_config = ConfigDict(frozen=True)

    error_code: str = Field(
        description="0 when every record was accepted; 3 when some already existed (add URL); "
        "-1 when a record was rejected or the request is unusable; -2 when some were not "
        "durable (HTTP 503: resend)."
    )
    message: str
    results: list[DvcqgRecordPublic] = Field(default_factory=list)


class RecordResultPublic(BaseModel):
    """The fate of one edXML message or one claim record (HOSO)."""

    model_config = ConfigDict(frozen=True)

    index: int
    ref: str | None = Field(description="Document or visit reference as used in events (never personal).")
    status: Literal["accepted", "rejected", "unavailable"] = Field(
        description="accepted: every event derived from it is durable in Kafka. rejected: do not "
        "resend unchanged. unavailable: resend later."
    )
    events: int = Field(description="Events derived and published (0: nothing concerns the province).")
    errors: list[FieldErrorPublic] = Field(default_factory=list)


class ConnectorAnswerPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    accepted: int
    rejected: int
    unavailable: int
    results: list[RecordResultPublic]
