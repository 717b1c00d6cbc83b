"""Payloads of the operators' KPI API. Every list has ``items`` (and ``next_cursor`` when it
pages); the same items are served as CSV with ``Accept: text/csv``."""

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.kpi import Bands, ScoreRule, Status

# How a value relates to the unit's territory (docs/units.md, "Restated history"):
# observed - the unit's own counters; restated_exact - summed from units that went into it
# whole; restated_approximate - includes a share of a unit that was split; none - the unit
# did not exist then and nothing is restated.
Basis = Literal["observed", "restated_exact", "restated_approximate", "none"]
HistoryMode = Literal["restated", "observed"]
BASIS_DESCRIPTION = (
    "observed: the unit's own counters; restated_exact: summed from units that went into it whole; "
    "restated_approximate: includes a share of a split unit (an equal share unless the succession data "
    "give a weight); none: the unit did not exist and nothing is restated"
)


class _History(BaseModel):
    """What every answer about a period says about units and reorganisations."""

    model_config = ConfigDict(frozen=True)

    history: HistoryMode = Field(
        description="restated: before a unit existed, its values are summed from what it was made of; "
        "observed: only its own counters"
    )
    reforms: list[dt.date] = Field(
        default_factory=list, description="Reorganisations that took effect inside the period (or the previous one)."
    )


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
    basis: Basis = Field(description=BASIS_DESCRIPTION)


class SeriesPublic(_History):
    kpi: str
    unit: str
    unit_name: str
    unit_valid_from: dt.date | None = Field(description="The unit the code denotes: its first day.")
    unit_valid_to: dt.date | None
    sector: str | None
    granularity: str
    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    note: str | None = Field(default=None, description="Why every point has no data, when it cannot have any.")
    items: list[SeriesPointPublic]


class RankingRowPublic(_Public):
    rank: int | None = Field(description="Equal values share a rank; null: no data.")
    unit: str
    unit_key: str = Field(description="The unit's identity: its code and first day (codes are reused).")
    unit_name: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    basis: Basis = Field(description=BASIS_DESCRIPTION)
    previous_basis: Basis
    value: float | None
    numerator: float | None
    denominator: float | None
    status: Status
    previous_value: float | None
    change: float | None = Field(description="value − previous_value")


class RankingPublic(_History):
    kpi: str
    level: str
    as_of: dt.date = Field(description="The units ranked are those of this day.")
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


class ScorecardPublic(_History):
    unit: str
    unit_name: str
    unit_valid_from: dt.date | None
    unit_valid_to: dt.date | None
    basis: Basis = Field(description=BASIS_DESCRIPTION)
    previous_basis: Basis
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
    unit_key: str
    unit_name: str
    basis: Basis = Field(description=BASIS_DESCRIPTION)
    score: float | None = Field(description="Out of 100, over the indicators that had data.")
    points: float
    max_points_with_data: float
    groups: list[GroupScorePublic]
    no_data: list[str]
    not_computable: list[str]


class ScorePublic(_History):
    level: str
    as_of: dt.date
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


class UnitLinkPublic(_Public):
    """A unit that went into (or came from) another at a reorganisation."""

    code: str
    name: str
    valid_from: dt.date | None
    valid_to: dt.date | None
    share: Literal["full", "partial"]
    weight: float = Field(description="The share of its counts restated onto the other unit.")
    effective: dt.date


class UnitPublic(_Public):
    code: str
    key: str = Field(description="The unit's identity: its code and first day (codes are reused).")
    name: str
    full_name: str
    kind: str
    level: int
    parent_code: str | None = Field(description="Its parent on its last day (or today).")
    valid_from: dt.date | None
    valid_to: dt.date | None
    population: int | None = Field(default=None, description="Indicative (docs/units.md).")
    area_km2: float | None = None
    former_district: str | None = Field(default=None, description="Formed mostly from this former district.")
    predecessors: list[UnitLinkPublic] = Field(default_factory=list)
    successors: list[UnitLinkPublic] = Field(default_factory=list)


class UnitListPublic(_Public):
    as_of: dt.date
    items: list[UnitPublic]
