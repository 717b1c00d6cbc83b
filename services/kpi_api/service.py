"""The KPI API's service layer: answers operators' questions from the shared read models, the
KPI registry and the unit registry. HTTP concerns (auth, ETag, CSV, paging) live in the routes.

Every registry KPI is answered by every endpoint: with values, or with "no data" and a note
saying why (a snapshot KPI has no history; a not-computable one has no events).
"""

import datetime as dt
from typing import Any

from schemas.events.projects import PROJECT_STAGES
from schemas.kpi import KpiDefinition, KpiRegistry
from schemas.kpi_api import (
    GroupScorePublic,
    IndicatorScorePublic,
    OverdueDossierPublic,
    ProjectPublic,
    RankingRowPublic,
    ScorecardRowPublic,
    ScoreRowPublic,
    SeriesPointPublic,
)
from services.core import calendar
from services.core.kpis.formulas import KpiValue, counters_of, evaluate, rank
from services.core.kpis.projects import schedule_status, snapshot_counters
from services.core.kpis.score import composite_score
from services.core.units import LEVEL_NAMES, Unit, UnitRegistry
from services.readmodels.counters import KpiStore
from services.readmodels.kpis import KpiReader, Period
from services.readmodels.tables import DOSSIERS, PROJECTS
from services.runtime.problems import InvalidQuery, NotFound

MAX_SERIES_POINTS = 10_000


def note_of(kpi: KpiDefinition, what: str) -> str | None:
    """Why a KPI has no values in a series or a comparison, if it cannot have any."""
    if not kpi.computable:
        return f"not computable from events: {kpi.note}"
    if kpi.basis == "snapshot" and what == "series":
        return "a snapshot KPI (its value now, from entity state) has no history; see the scorecard or ranking"
    if kpi.basis == "snapshot" and what == "previous":
        return "a snapshot KPI (its value now) has no value for a past period: no change is given"
    return None


def _change(value: float | None, previous: float | None) -> float | None:
    return None if value is None or previous is None else value - previous


class KpiService:
    def __init__(self, store: KpiStore, kpis: KpiRegistry, units: UnitRegistry) -> None:
        self.store = store
        self.kpis = kpis
        self.units = units
        self.reader = KpiReader(store, kpis, units)

    # -- lookups -------------------------------------------------------------------------
    def kpi(self, kpi_id: str) -> KpiDefinition:
        kpi = self.kpis.get(kpi_id)
        if kpi is None:
            raise NotFound(f"no KPI {kpi_id!r}; GET /v1/kpis lists them")
        return kpi

    def unit(self, code: str) -> Unit:
        unit = self.units.get(code)
        if unit is None:
            raise NotFound(f"no administrative unit {code!r}")
        return unit

    def level_units(self, level: str, period: Period, within: str | None = None) -> list[Unit]:
        if level not in LEVEL_NAMES:
            raise InvalidQuery(f"level must be one of {', '.join(LEVEL_NAMES)}")
        first_day, last_day = period.start.date(), (period.end - dt.timedelta(seconds=1)).date()
        return [
            u
            for u in self.units.at_level(LEVEL_NAMES[level], within)
            if (u.valid_to is None or u.valid_to >= first_day) and (u.valid_from is None or u.valid_from <= last_day)
        ]

    # -- answers -------------------------------------------------------------------------
    async def series(
        self,
        kpi: KpiDefinition,
        code: str,
        sector: str | None,
        period: Period,
        granularity: calendar.Granularity,
        now: dt.datetime,
    ) -> list[SeriesPointPublic]:
        """One point per bucket; every point "no data" for KPIs without history."""
        if calendar.count_buckets(period.start, period.end, granularity) > MAX_SERIES_POINTS:
            raise InvalidQuery(f"more than {MAX_SERIES_POINTS} points; use a coarser granularity")
        buckets = calendar.buckets(period.start, period.end, granularity)
        by_bucket: dict[dt.datetime, dict[str, int]] = {}
        if note_of(kpi, "series") is None:
            by_bucket = await self.store.series(
                code,
                self.reader.leaves(code),
                counters_of(kpi),
                buckets[0][0],
                buckets[-1][1],
                granularity,
                sector,
                now,
            )
        population = self.units.units[code].population
        points = []
        for start, end in buckets:
            result = evaluate(kpi, by_bucket.get(start, {}), population)
            points.append(
                SeriesPointPublic(
                    start=start,
                    end=end,
                    value=result.value,
                    numerator=result.numerator,
                    denominator=result.denominator,
                    status=result.status,
                )
            )
        return points

    async def ranking(
        self, kpi: KpiDefinition, level: str, period: Period, sector: str | None, now: dt.datetime
    ) -> tuple[list[RankingRowPublic], int]:
        units = self.level_units(level, period)
        codes = [u.code for u in units]
        current = await self.reader.values([kpi], codes, period, sector, now)
        before: dict[str, dict[str, KpiValue]] = {}
        if note_of(kpi, "previous") is None:
            before = await self.reader.values([kpi], codes, period.previous(), sector, now)
        values = [current[c][kpi.id].value for c in codes]
        ranks = rank(values, kpi.direction)
        rows = []
        for unit, position in zip(units, ranks, strict=True):
            result = current[unit.code][kpi.id]
            previous = before.get(unit.code, {}).get(kpi.id)
            prev_value = previous.value if previous else None
            rows.append(
                RankingRowPublic(
                    rank=position,
                    unit=unit.code,
                    unit_name=unit.name,
                    value=result.value,
                    numerator=result.numerator,
                    denominator=result.denominator,
                    status=result.status,
                    previous_value=prev_value,
                    change=_change(result.value, prev_value),
                )
            )
        rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.unit))
        return rows, sum(1 for v in values if v is not None)

    async def scorecard(self, code: str, period: Period, now: dt.datetime) -> list[ScorecardRowPublic]:
        """Every registry KPI of one unit, with its target and status (no data where none)."""
        kpis = list(self.kpis.kpis)
        current = (await self.reader.values(kpis, [code], period, None, now))[code]
        comparable = [k for k in kpis if note_of(k, "previous") is None]
        before = (await self.reader.values(comparable, [code], period.previous(), None, now))[code]
        rows = []
        for kpi in kpis:
            result = current[kpi.id]
            prev = before.get(kpi.id)
            prev_value = prev.value if prev else None
            rows.append(
                ScorecardRowPublic(
                    kpi=kpi.id,
                    name_vi=kpi.name_vi,
                    name_en=kpi.name_en,
                    unit_of_measure=kpi.unit,
                    value=result.value,
                    numerator=result.numerator,
                    denominator=result.denominator,
                    target=kpi.target,
                    status=result.status,
                    previous_value=prev_value,
                    change=_change(result.value, prev_value),
                    note=note_of(kpi, "previous"),
                )
            )
        return rows

    async def score(self, level: str, period: Period, now: dt.datetime) -> list[ScoreRowPublic]:
        units = self.level_units(level, period)
        scored = [k for k in self.kpis.kpis if k.score is not None and k.computable]
        values = await self.reader.values(scored, [u.code for u in units], period, None, now)
        results = [composite_score(self.kpis, values[u.code]) for u in units]
        ranks = rank([r.score for r in results], "higher")
        rows = []
        for unit, result, position in zip(units, results, ranks, strict=True):
            groups = [
                GroupScorePublic(
                    group=key,
                    name=g.name,
                    max_points=g.max_points,
                    points=round(g.points, 4),
                    points_with_data=g.points_with_data,
                    indicators=[IndicatorScorePublic(**i) for i in g.indicators],
                )
                for key, g in result.groups.items()
            ]
            rows.append(
                ScoreRowPublic(
                    rank=position,
                    unit=unit.code,
                    unit_name=unit.name,
                    score=None if result.score is None else round(result.score, 4),
                    points=round(result.points, 4),
                    max_points_with_data=result.max_points_with_data,
                    groups=groups,
                    no_data=result.no_data,
                    not_computable=result.not_computable,
                )
            )
        rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.unit))
        return rows

    async def overdue(
        self, code: str, now: dt.datetime, after: tuple[dt.datetime, str] | None, limit: int
    ) -> tuple[list[dict[str, Any]], list[OverdueDossierPublic]]:
        leaves = self.reader.leaves(code)
        counts = await self.store.overdue_counts(leaves, now)
        per_unit = [
            {
                "unit": c,
                "unit_name": self.units.units[c].name if c in self.units else c,
                "open": counts[c][0],
                "overdue": counts[c][1],
            }
            for c in sorted(counts)
        ]
        items = []
        for row in await self.store.overdue_dossiers(leaves, now, after, limit):
            state = DOSSIERS.from_row(row)
            due = state.effective_due()
            items.append(
                OverdueDossierPublic(
                    dossier_id=state.dossier_id,
                    sector=state.sector,
                    unit=state.unit_code,
                    procedure_code=state.procedure_code,
                    channel=state.channel,
                    received_at=state.received_at,
                    due_at=state.due_at,
                    effective_due_at=due,
                    overdue_hours=round(max(0.0, (now - due).total_seconds()) / 3600, 2) if due else None,
                    supplement_count=state.supplement_count,
                )
            )
        return per_unit, items

    async def projects(
        self, code: str, stage: str | None, now: dt.datetime
    ) -> tuple[dict[str, int], float | None, list[ProjectPublic]]:
        if stage is not None and stage not in PROJECT_STAGES:
            raise InvalidQuery(f"stage must be one of {', '.join(PROJECT_STAGES)}")
        states = [PROJECTS.from_row(r) for r in await self.store.projects(self.reader.leaves(code))]
        today = calendar.local(now).date()
        counts = snapshot_counters(states, today)
        by_stage = {s: counts[f"project.stage.{s}"] for s in PROJECT_STAGES}
        rule = self.kpis.get("project_on_schedule_rate")
        rate = evaluate(rule, counts).value if rule is not None and states else None
        items = [
            ProjectPublic(
                project_id=s.project_id,
                sector=s.sector,
                unit=s.unit_code,
                title=s.title,
                stage=s.stage,
                planned_completion=s.planned_completion,
                percent_complete=s.percent_complete,
                planned_percent=s.planned_percent,
                progress_reported_at=s.progress_reported_at,
                schedule_status=schedule_status(s, today),
            )
            for s in states
            if stage is None or s.stage == stage
        ]
        return by_stage, rate, items
