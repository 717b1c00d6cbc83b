"""Payloads of the operators' KPI API. Every list has ``items`` (and ``next_cursor`` when it
pages); the same items are served as CSV with ``Accept: text/csv``."""

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from schemas.kpi import Bands, ScoreRule, Status


class _Public(BaseModel):
    model_config = ConfigDict(frozen=True)


class KpiPublic(_Public):
    id: str
    name_vi: str
    name_en: str
    description: str
    kind: str
    basis: str = Field(description="events: counters over the period; snapshot: state now.")
    formula: str = Field(description="The formula over counters, as text.")
    computed_in: list[str] = Field(description="The core modules that compute its counters.")
    unit: str
    direction: str
    target: float | None
    bands: Bands | None
    score: ScoreRule | None
    sectors: list[str] | None
    window_days: int
    alert: bool
    source: str
    source_kind: str
    note: str


class KpiListPublic(_Public):
    version: str
    items: list[KpiPublic]


class SeriesPointPublic(_Public):
    start: dt.datetime
    end: dt.datetime
    value: float | None = Field(description="null: no data (not zero).")
    numerator: float | None
    denominator: float | None
    status: Status


class SeriesPublic(_Public):
    kpi: str
    unit: str
    unit_name: str
    sector: str | None
    granularity: str
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    note: str | None = Field(default=None, description="Why every point has no data, when it cannot have any.")
    items: list[SeriesPointPublic]


class RankingRowPublic(_Public):
    rank: int | None = Field(description="Equal values share a rank; null: no data.")
    unit: str
    unit_name: str
    value: float | None
    numerator: float | None
    denominator: float | None
    status: Status
    previous_value: float | None
    change: float | None = Field(description="value − previous_value")


class RankingPublic(_Public):
    kpi: str
    level: str
    sector: str | None
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    previous_from: dt.datetime
    previous_to: dt.datetime
    ranked_units: int = Field(description="Units of the level with data (what ranks are out of).")
    note: str | None = Field(default=None, description="Why values or changes are missing, when they cannot exist.")
    items: list[RankingRowPublic]
    next_cursor: str | None = None


class ScorecardRowPublic(_Public):
    kpi: str
    name_vi: str
    name_en: str
    unit_of_measure: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    status: Status
    previous_value: float | None
    change: float | None
    note: str | None = Field(default=None, description="Why the value or the change is missing, when it must be.")


class ScorecardPublic(_Public):
    unit: str
    unit_name: str
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    items: list[ScorecardRowPublic]


class IndicatorScorePublic(_Public):
    kpi: str
    status: str = Field(description="scored, no_data or not_computable")
    value: float | None = None
    points: float | None = None
    max_points: float
    note: str | None = None


class GroupScorePublic(_Public):
    group: str
    name: str
    max_points: int
    points: float
    points_with_data: float
    indicators: list[IndicatorScorePublic]


class ScoreRowPublic(_Public):
    rank: int | None
    unit: str
    unit_name: str
    score: float | None = Field(description="Out of 100, over the indicators that had data.")
    points: float
    max_points_with_data: float
    groups: list[GroupScorePublic]
    no_data: list[str]
    not_computable: list[str]


class ScorePublic(_Public):
    level: str
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    items: list[ScoreRowPublic]
    next_cursor: str | None = None


class UnitOverduePublic(_Public):
    unit: str
    unit_name: str
    open: int
    overdue: int


class OverdueDossierPublic(_Public):
    dossier_id: str
    sector: str
    unit: str
    procedure_code: str | None
    channel: str | None
    received_at: dt.datetime
    due_at: dt.datetime | None = Field(description="null: the procedure has no due time (overdue by supplements).")
    effective_due_at: dt.datetime | None = Field(description="Due time extended by supplement waits.")
    overdue_hours: float | None
    supplement_count: int


class OverduePublic(_Public):
    unit: str
    as_of: dt.datetime
    per_unit: list[UnitOverduePublic]
    items: list[OverdueDossierPublic]
    next_cursor: str | None = None


class ProjectPublic(_Public):
    project_id: str
    sector: str
    unit: str
    title: str | None
    stage: str | None
    planned_completion: dt.date | None
    percent_complete: float | None
    planned_percent: float | None
    progress_reported_at: dt.datetime | None
    schedule_status: str


class ProjectsPublic(_Public):
    unit: str
    stage: str | None
    counts_by_stage: dict[str, int]
    on_schedule_rate: float | None
    items: list[ProjectPublic]
    next_cursor: str | None = None


class UnitPublic(_Public):
    code: str
    name: str
    full_name: str
    kind: str
    level: int
    parent_code: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None


class UnitListPublic(_Public):
    items: list[UnitPublic]
