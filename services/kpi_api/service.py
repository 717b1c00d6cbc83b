"""The KPI API's service layer: answers operators' questions from the shared read models, the
KPI registry and the unit registry. HTTP concerns (auth, ETag, CSV, paging) live in the routes.

Every registry KPI is answered by every endpoint: with values, or with "no data" and a note
saying why (a snapshot KPI has no history; a not-computable one has no events).
"""

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from schemas.kpi import KpiDefinition, KpiRegistry
from schemas.kpi_api import ScorecardRowPublic, SeriesPointPublic
from services.core import calendar
from services.core.history import History, as_of_day, compose_former, former_eve, former_units, unit_on
from services.core.kpis.formulas import KpiValue, rank
from services.core.kpis.score import composite_score
from services.core.units import LEVEL_NAMES, Unit, UnitRegistry
from services.readmodels.counters import KpiStore
from services.readmodels.kpis import KpiReader, Period, Subject
from services.runtime.problems import InvalidQuery, NotFound

MAX_SERIES_POINTS = 10_000
LEVELS = (*LEVEL_NAMES, "former_district")


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


@dataclass(frozen=True, slots=True)
class Comparison:
    """Values of subjects over a period and of the same units over the previous one."""

    current: list[Subject]
    before: list[Subject]
    values: dict[str, dict[str, KpiValue]]
    previous_values: dict[str, dict[str, KpiValue]]


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

    def unit(self, code: str, period: Period | None = None, as_of: dt.date | None = None) -> Unit:
        """The unit ``code`` names (a code denotes different units over time): the one of
        ``as_of`` if given, else the latest during ``period``, else its latest."""
        if code not in self.units:
            raise NotFound(f"no administrative unit {code!r}")
        if period is None:
            unit = self.units.get(code, as_of)
        else:
            unit = unit_on(self.units, code, period.start, period.end, as_of)
        if unit is None:
            spans = "; ".join(u.describe_validity() for u in self.units.versions(code))
            raise NotFound(f"unit {code!r} did not exist on {as_of} (it existed {spans})")
        return unit

    def as_of(self, period: Period, as_of: dt.date | None) -> dt.date:
        """Which day's units a level names: ``as_of``, by default the period's last day."""
        return as_of or as_of_day(period.end)

    def reforms(self, *periods: Period) -> list[dt.date]:
        """Reorganisations inside the periods or between them (a month compared with the one
        before a reform crosses it, though neither month contains it)."""
        first = min(p.first_day for p in periods)
        last = max(p.last_day for p in periods)
        return [d for d in self.units.reform_dates() if first < d <= last]

    def level_units(self, level: str, day: dt.date) -> list[Unit]:
        """The units of a level on ``day`` (``former_district``: the district-level units of
        the last day they existed)."""
        if level == "former_district":
            return former_units(self.units)
        if level not in LEVEL_NAMES:
            raise InvalidQuery(f"level must be one of {', '.join(LEVELS)}")
        return self.units.at_level(LEVEL_NAMES[level], day)

    def subjects(self, level: str, units: list[Unit], period: Period, history: History) -> list[Subject]:
        if level != "former_district":
            return [self.reader.subject(u, period, history) for u in units]
        eve = former_eve(self.units) or period.last_day
        return [
            Subject(
                u.key,
                u.code,
                u.name,
                u,
                tuple(compose_former(self.units, u, period.start, period.end)),
                self.units.population(u, eve),
            )
            for u in units
        ]

    async def compare(
        self, kpis: list[KpiDefinition], level: str, period: Period, day: dt.date, history: History,
        sector: str | None, now: dt.datetime,
    ) -> Comparison:  # fmt: skip
        """Values of the level's units (as of ``day``) over the period and the previous one."""
        units = self.level_units(level, day)
        current = self.subjects(level, units, period, history)
        before = self.subjects(level, units, period.previous(), history)
        comparable = [k for k in kpis if note_of(k, "previous") is None]
        values, previous = await asyncio.gather(
            self.reader.values(kpis, current, sector, now), self.reader.values(comparable, before, sector, now)
        )
        return Comparison(current, before, values, previous)

    # -- answers -------------------------------------------------------------------------
    async def series(
        self, kpi: KpiDefinition, unit: Unit, sector: str | None, period: Period,
        granularity: calendar.Granularity, history: History, now: dt.datetime,
    ) -> list[SeriesPointPublic]:  # fmt: skip
        """One point per bucket; every point "no data" for KPIs without history."""
        if calendar.count_buckets(period.start, period.end, granularity) > MAX_SERIES_POINTS:
            raise InvalidQuery(f"more than {MAX_SERIES_POINTS} points; use a coarser granularity")
        buckets = calendar.buckets(period.start, period.end, granularity)
        subject = self.reader.subject(unit, Period(buckets[0][0], buckets[-1][1]), history)
        if note_of(kpi, "series") is None:
            results = await self.reader.series(kpi, subject, buckets, granularity, sector, now)
        else:
            results = [(KpiValue(None, None, None, "no_data"), subject.basis_between(a, b)) for a, b in buckets]
        return [
            SeriesPointPublic(
                start=start,
                end=end,
                value=value.value,
                numerator=value.numerator,
                denominator=value.denominator,
                status=value.status,
                basis=basis,
            )
            for (start, end), (value, basis) in zip(buckets, results, strict=True)
        ]

    async def ranking(
        self, kpi: KpiDefinition, level: str, period: Period, day: dt.date, history: History,
        sector: str | None, now: dt.datetime,
    ) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
        """Rows of :class:`RankingRowPublic` as plain data (see :meth:`score`), ranked, and
        how many units have a value."""
        found = await self.compare([kpi], level, period, day, history, sector, now)
        values = [found.values[s.key][kpi.id].value for s in found.current]
        ranks = rank(values, kpi.direction)
        rows = []
        for subject, before, position in zip(found.current, found.before, ranks, strict=True):
            result = found.values[subject.key][kpi.id]
            previous = found.previous_values.get(before.key, {}).get(kpi.id)
            prev_value = previous.value if previous else None
            unit = subject.unit
            rows.append(
                {
                    "rank": position,
                    "unit": subject.code,
                    "unit_key": subject.key,
                    "unit_name": subject.name,
                    "valid_from": unit.valid_from.isoformat() if unit.valid_from else None,
                    "valid_to": unit.valid_to.isoformat() if unit.valid_to else None,
                    "basis": subject.basis,
                    "previous_basis": before.basis,
                    "value": result.value,
                    "numerator": result.numerator,
                    "denominator": result.denominator,
                    "status": result.status,
                    "previous_value": prev_value,
                    "change": _change(result.value, prev_value),
                }
            )
        rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["unit"]))
        return rows, sum(1 for v in values if v is not None)

    async def scorecard(
        self, unit: Unit, period: Period, history: History, now: dt.datetime
    ) -> tuple[list[ScorecardRowPublic], Subject, Subject]:
        """Every registry KPI of one unit, with its target and status (no data where none)."""
        kpis = list(self.kpis.kpis)
        subject = self.reader.subject(unit, period, history)
        before = self.reader.subject(unit, period.previous(), history)
        comparable = [k for k in kpis if note_of(k, "previous") is None]
        found, found_before = await asyncio.gather(
            self.reader.values(kpis, [subject], None, now), self.reader.values(comparable, [before], None, now)
        )
        current, previous = found[subject.key], found_before[before.key]
        rows = []
        for kpi in kpis:
            result, prev = current[kpi.id], previous.get(kpi.id)
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
        return rows, subject, before

    async def score(
        self, level: str, period: Period, day: dt.date, history: History, now: dt.datetime
    ) -> list[dict[str, Any]]:
        """Rows of :class:`ScoreRowPublic` as plain data, ranked: the route validates the
        whole answer in one pass (548 communes × 11 indicators: one model at a time costs
        more than the query)."""
        units = self.level_units(level, day)
        subjects = self.subjects(level, units, period, history)
        scored = [k for k in self.kpis.kpis if k.score is not None and k.computable]
        values = await self.reader.values(scored, subjects, None, now)
        results = [composite_score(self.kpis, values[s.key]) for s in subjects]
        ranks = rank([r.score for r in results], "higher")
        rows = [
            {
                "rank": position,
                "unit": subject.code,
                "unit_key": subject.key,
                "unit_name": subject.name,
                "basis": subject.basis,
                "score": None if result.score is None else round(result.score, 4),
                "points": round(result.points, 4),
                "max_points_with_data": result.max_points_with_data,
                "groups": [
                    {
                        "group": key,
                        "name": g.name,
                        "max_points": g.max_points,
                        "points": round(g.points, 4),
                        "points_with_data": g.points_with_data,
                        "indicators": g.indicators,
                    }
                    for key, g in result.groups.items()
                ],
                "no_data": result.no_data,
                "not_computable": result.not_computable,
            }
            for subject, result, position in zip(subjects, results, ranks, strict=True)
        ]
        rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, r["unit"]))
        return rows
