"""The KPI API's service layer: answers operators' questions from the store, the KPI
registry and the unit registry. HTTP concerns (auth, ETag, CSV, paging) live in the routes.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
from schemas.units import LEVEL_NAMES, Unit, UnitRegistry
from services.aggregator.domain.dossiers import DossierState
from services.aggregator.domain.projects import ProjectState, schedule_status
from services.kpi_api.adapters.store import KpiStore
from services.kpi_api.domain import periods
from services.kpi_api.domain.formulas import KpiValue, composite_score, counters_of, evaluate, rank
from services.runtime.problems import InvalidQuery, NotFound

MAX_SERIES_POINTS = 10_000
PROJECT_STAGES = ("proposal", "design", "appraisal", "in_progress", "completed")


def formula_text(kpi: KpiDefinition) -> str:
    def terms(items: Iterable[str]) -> str:
        text = " ".join(("− " + t[1:]) if t.startswith("-") else ("+ " + t) for t in items)
        return text.removeprefix("+ ")

    if kpi.kind == "ratio":
        return f"{kpi.scale:g} × ({terms(kpi.numerator)}) ÷ ({terms(kpi.denominator)})"
    if kpi.kind == "sum":
        return f"{kpi.scale:g} × ({terms(kpi.numerator)})"
    if kpi.kind == "per_100k":
        return f"({terms(kpi.numerator)}) ÷ (population ÷ 100 000)"
    if kpi.kind == "quantile":
        return f"p{round((kpi.quantile or 0) * 100)} of dossier.processing_le_<h>h over {terms(kpi.denominator)}"
    if kpi.kind == "snapshot":
        return "snapshot of e-government project state (now)"
    return "not computable from events"


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def parse(cls, start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime) -> "Period":
        for name, moment in (("from", start), ("to", end)):
            if moment is not None and not 1970 <= moment.year <= 2199:  # and prior periods stay representable
                raise InvalidQuery(
                    f"`{name}` must fall in the years 1970-2199",
                    errors=[{"field": name, "message": "outside 1970-2199", "code": "range"}],
                )
        default_start, default_end = periods.default_period(now)
        a = periods.local(start) if start else default_start
        b = periods.local(end) if end else default_end
        if a >= b:
            raise InvalidQuery(
                "`from` must be before `to`", errors=[{"field": "from", "message": "not before `to`", "code": "range"}]
            )
        return cls(a, b)

    def previous(self) -> "Period":
        return Period(*periods.previous(self.start, self.end))


def _schedule_counts(states: list[ProjectState], today: dt.date) -> tuple[int, int]:
    """(active projects, of which on schedule) - the parts of the on-schedule rate."""
    active = [s for s in states if s.stage != "completed"]
    return len(active), sum(1 for s in active if schedule_status(s, today) == "on_schedule")


def _change(value: float | None, previous: float | None) -> float | None:
    return None if value is None or previous is None else value - previous


class KpiService:
    def __init__(self, store: KpiStore, kpis: KpiRegistry, units: UnitRegistry) -> None:
        self.store = store
        self.kpis = kpis
        self.units = units

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

    def leaves(self, code: str) -> list[str]:
        return [code, *self.units.descendants(code)]

    def level_units(self, level: str, period: Period, within: str | None = None) -> list[Unit]:
        if level not in LEVEL_NAMES:
            raise InvalidQuery(f"level must be one of {', '.join(LEVEL_NAMES)}")
        first_day, last_day = period.start.date(), (period.end - dt.timedelta(seconds=1)).date()
        return [
            u
            for u in self.units.at_level(LEVEL_NAMES[level], within)
            if (u.valid_to is None or u.valid_to >= first_day) and (u.valid_from is None or u.valid_from <= last_day)
        ]

    # -- values --------------------------------------------------------------------------
    async def values(
        self, kpis: list[KpiDefinition], codes: list[str], period: Period, sector: str | None, now: dt.datetime
    ) -> dict[str, dict[str, KpiValue]]:
        """Every KPI for every unit over one period."""
        counters = set().union(*(counters_of(k) for k in kpis)) if kpis else set()
        totals = (
            await self.store.totals(
                codes,
                counters,
                period.start,
                period.end,
                sector,
                now,
                leaves={c: self.leaves(c) for c in codes},
            )
            if counters
            else {c: {} for c in codes}
        )
        snapshots = await self._snapshots(kpis, codes, now)
        out: dict[str, dict[str, KpiValue]] = {}
        for code in codes:
            population = self.units.units[code].population
            row = {
                k.id: evaluate(k, totals.get(code, {}), population)
                for k in kpis
                if k.kind not in ("snapshot", "not_computable")
            }
            row.update(snapshots.get(code, {}))
            out[code] = row
        return out

    async def _snapshots(
        self, kpis: list[KpiDefinition], codes: list[str], now: dt.datetime
    ) -> dict[str, dict[str, KpiValue]]:
        wanted = [k for k in kpis if k.kind == "snapshot"]
        if not wanted:
            return {}
        out: dict[str, dict[str, KpiValue]] = {}
        today = periods.local(now).date()
        for code in codes:
            states = await self._project_states(code)
            active, on_schedule = _schedule_counts(states, today)
            result: dict[str, KpiValue] = {}
            for kpi in wanted:
                if kpi.id == "project_on_schedule_rate":
                    value = 100 * on_schedule / active if active else None
                    result[kpi.id] = KpiValue(value, on_schedule, active, kpi.status(value))
                else:
                    count = float(len(states)) if states else None
                    result[kpi.id] = KpiValue(count, count, None, kpi.status(count))
            out[code] = result
        return out

    # -- answers -------------------------------------------------------------------------
    async def series(
        self,
        kpi: KpiDefinition,
        code: str,
        sector: str | None,
        period: Period,
        granularity: periods.Granularity,
        now: dt.datetime,
    ) -> list[SeriesPointPublic]:
        if kpi.kind in ("snapshot", "not_computable"):
            raise InvalidQuery(f"KPI {kpi.id} is a {kpi.kind.replace('_', ' ')}, not a time series")
        if periods.count_buckets(period.start, period.end, granularity) > MAX_SERIES_POINTS:
            raise InvalidQuery(f"more than {MAX_SERIES_POINTS} points; use a coarser granularity")
        buckets = periods.buckets(period.start, period.end, granularity)
        by_bucket = await self.store.series(
            code, self.leaves(code), counters_of(kpi), buckets[0][0], buckets[-1][1], granularity, sector, now
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
        current = await self.values([kpi], codes, period, sector, now)
        before = await self.values([kpi], codes, period.previous(), sector, now) if kpi.kind != "snapshot" else {}
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
        kpis = [k for k in self.kpis.kpis if k.kind != "not_computable"]
        current = (await self.values(kpis, [code], period, None, now))[code]
        before = (await self.values([k for k in kpis if k.kind != "snapshot"], [code], period.previous(), None, now))[
            code
        ]
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
                )
            )
        return rows

    async def score(self, level: str, period: Period, now: dt.datetime) -> list[ScoreRowPublic]:
        units = self.level_units(level, period)
        scored = [k for k in self.kpis.kpis if k.score is not None and k.kind != "not_computable"]
        values = await self.values(scored, [u.code for u in units], period, None, now)
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

    async def _project_states(self, code: str) -> list[ProjectState]:
        return [ProjectState(**dict(r)) for r in await self.store.projects(self.leaves(code), None)]

    async def overdue(
        self, code: str, now: dt.datetime, after: tuple[dt.datetime, str] | None, limit: int
    ) -> tuple[list[dict[str, Any]], list[OverdueDossierPublic]]:
        leaves = self.leaves(code)
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
        rows = await self.store.overdue_dossiers(leaves, now, after, limit)
        items = []
        for r in rows:
            state = DossierState(
                dossier_id=r["dossier_id"],
                sector=r["sector"],
                unit_code=r["unit_code"],
                due_at=r["due_at"],
                supplement_count=r["supplement_count"],
                paused_seconds=r["paused_seconds"],
                pause_started_at=r["pause_started_at"],
            )
            due = state.effective_due()
            assert due is not None
            items.append(
                OverdueDossierPublic(
                    dossier_id=r["dossier_id"],
                    sector=r["sector"],
                    unit=r["unit_code"],
                    procedure_code=r["procedure_code"],
                    channel=r["channel"],
                    received_at=r["received_at"],
                    due_at=r["due_at"],
                    effective_due_at=due,
                    overdue_hours=round(max(0.0, (now - due).total_seconds()) / 3600, 2),
                    supplement_count=r["supplement_count"],
                )
            )
        return per_unit, items

    async def projects(
        self, code: str, stage: str | None, now: dt.datetime
    ) -> tuple[dict[str, int], float | None, list[ProjectPublic]]:
        if stage is not None and stage not in PROJECT_STAGES:
            raise InvalidQuery(f"stage must be one of {', '.join(PROJECT_STAGES)}")
        states = await self._project_states(code)
        today = periods.local(now).date()
        counts = {s: 0 for s in PROJECT_STAGES}
        for state in states:
            if state.stage in counts:
                counts[state.stage] += 1
        active, on_schedule = _schedule_counts(states, today)
        rate = 100 * on_schedule / active if active else None
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
        return counts, rate, items
