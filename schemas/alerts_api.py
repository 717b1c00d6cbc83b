"""Payloads of the alerts endpoints of the KPI API (``/v1/alerts``).

Field names match what the dashboard's alerts panel reads (``kpi``, ``unit``, ``unit_name``,
``status``, ``value``, ``threshold``, ``opened_at``, ``title``)."""

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.kpi import Status

AlertKind = Literal["threshold", "silence"]
AlertState = Literal["open", "acknowledged", "closed"]


class AlertPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    kind: AlertKind
    rule: str = Field(description="threshold.<kpi> or silence.<family>.")
    unit: str
    unit_name: str
    sector: str | None
    kpi: str | None = Field(description="Threshold alerts: the KPI watched.")
    family: str | None = Field(description="Silence alerts: the event family watched.")
    title: str = Field(description="What is watched, in Vietnamese.")
    title_en: str
    state: AlertState
    status: Status = Field(description="red while the alert is live, green once closed.")
    value: float | None = Field(
        description="Threshold: the KPI's latest value; silence: working hours without a matching event."
    )
    threshold: float | None = Field(
        description="Threshold: the red band (opens); silence: the period in working hours."
    )
    close_threshold: float | None = Field(description="Threshold: the green band (closes); silence: null.")
    unit_of_measure: str
    window_days: int | None = Field(description="Threshold: the rolling window of the KPI.")
    opened_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    closed_at: dt.datetime | None
    details: dict[str, Any] = Field(description="Everything the worker recorded (numerator, denominator…).")


class AlertListPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[AlertPublic]
    next_cursor: str | None = None


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: str | None = Field(default=None, max_length=1000, description="Why, or what is being done.")
