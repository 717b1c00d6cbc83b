"""KPI values of units over a period: counters from PostgreSQL, formulas from the registry,
and history across reorganisations from the core (``services.core.history``).

The read side the KPI API (series, rankings, scorecards, scores) and the alerts worker
(threshold judgements) share. Every registry KPI has a value or "no data" here: event KPIs
from summed counters of the period, snapshot KPIs from entity state now, not-computable
KPIs never. A value is computed for a :class:`Subject` - a unit as of a day, or a former
district - whose pieces say which codes' counters, over which days and with which weight,
make it, and so whether it is observed or restated (exactly or approximately).
"""

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.kpi import KpiDefinition, KpiRegistry
from schemas.metrics import LIVE_METRICS
from services.core import calendar
from services.core.history import Basis, History, Piece, compose, day_start, worst
from services.core.kpis.formulas import KpiValue, counters_of, evaluate
from services.core.kpis.projects import ProjectState, snapshot_counters
from services.core.units import ONE_DAY, Unit, UnitRegistry
from services.readmodels.counters import KpiStore, Membership
from services.readmodels.tables import PROJECTS
from services.runtime.problems import InvalidQuery

Totals = dict[str, float]


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open period [start, end) in local time."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def parse(cls, start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime) -> "Period":
        """From optional query bounds (default: the last 30 local days); InvalidQuery when
        they are out of range or not in order."""
        for name, moment in (("from", start), ("to", end)):
            if moment is not None and not 1970 <= moment.year <= 2199:  # and prior periods stay representable
                raise InvalidQuery(
                    f"`{name}` must fall in the years 1970-2199",
                    errors=[{"field": name, "message": "outside 1970-2199", "code": "range"}],
                )
        default_start, default_end = calendar.default_period(now)
        a = calendar.local(start) if start else default_start
        b = calendar.local(end) if end else default_end
        if a >= b:
            raise InvalidQuery(
                "`from` must be before `to`", errors=[{"field": "from", "message": "not before `to`", "code": "range"}]
            )
        return cls(a, b)

    @classmethod
    def window(cls, now: dt.datetime, days: int) -> "Period":
        """The rolling window of ``days`` ending now."""
        return cls(calendar.local(now - dt.timedelta(days=days)), calendar.local(now))

    def previous(self) -> "Period":
        return Period(*calendar.previous(self.start, self.end))

    @property
    def first_day(self) -> dt.date:
        return self.start.astimezone(calendar.VN).date()

    @property
    def last_day(self) -> dt.date:
        return (self.end - dt.timedelta(microseconds=1)).astimezone(calendar.VN).date()

    def crossing(self, dates: Sequence[dt.date]) -> list[dt.date]:
        """The dates (reforms) that fall inside the period, after its first day."""
        return [d for d in dates if self.first_day < d <= self.last_day]


@dataclass(frozen=True, slots=True)
class Subject:
    """What values are computed for: a unit as of a day, or a group of units."""

    key: str
    code: str
    name: str
    unit: Unit
    pieces: tuple[Piece, ...]
    population: int | None

    @property
    def basis(self) -> Basis:
        return worst(p.basis for p in self.pieces)

    def basis_between(self, start: dt.datetime, end: dt.datetime) -> Basis:
        return worst(p.basis for p in self.pieces if p.overlaps(start, end))


class KpiReader:
    """Values of registry KPIs for subjects of the unit registry."""

    def __init__(self, store: KpiStore, kpis: KpiRegistry, units: UnitRegistry) -> None:
        self.store = store
        self.kpis = kpis
        self.units = units

    # -- subjects ----------------------------------------------------------------------------
    def subject(self, unit: Unit, period: Period, history: History = "restated") -> Subject:
        pieces = compose(self.units, unit, period.start, period.end, history)
        population = self.units.population(unit, min(period.last_day, unit.valid_to or period.last_day))
        return Subject(unit.key, unit.code, unit.name, unit, tuple(pieces), population)

    def memberships(self, subject: Subject) -> list[Membership]:
        """The codes (the subject's and every unit's below it) whose dossiers count for it,
        over which times and with which weight."""
        out = []
        for piece in subject.pieces:
            unit = self.units.get(piece.code, piece.start.astimezone(calendar.VN).date())
            if unit is None:
                continue
            last = (piece.end - dt.timedelta(microseconds=1)).astimezone(calendar.VN).date()
            for code, first_day, last_day in self.units.memberships(unit, piece.start.date(), last):
                start = max(piece.start, day_start(first_day))
                end = min(piece.end, day_start(last_day + ONE_DAY))
                if start < end:
                    out.append(Membership(subject.key, code, start, end, piece.weight))
        return out

    # -- values -------------------------------------------------------------------------------
    async def values(
        self, kpis: list[KpiDefinition], subjects: list[Subject], sector: str | None, now: dt.datetime
    ) -> dict[str, dict[str, KpiValue]]:
        """Every KPI for every subject over the periods their pieces cover (snapshot KPIs:
        now)."""
        events = [k for k in kpis if k.computable and k.basis == "events"]
        snapshots = [k for k in kpis if k.computable and k.basis == "snapshot"]
        metrics = set().union(*(counters_of(k) for k in events)) if events else set()
        totals = await self.totals(subjects, metrics, sector, now)
        snapshot = await self.snapshot_totals(subjects, now) if snapshots else {}
        out: dict[str, dict[str, KpiValue]] = {}
        for subject in subjects:
            row = {k.id: evaluate(k, totals[subject.key], subject.population) for k in events}
            row.update({k.id: evaluate(k, snapshot.get(subject.key, {}), subject.population) for k in snapshots})
            row.update({k.id: KpiValue(None, None, None, "no_data") for k in kpis if not k.computable})
            out[subject.key] = row
        return out

    async def totals(
        self, subjects: list[Subject], metrics: set[str], sector: str | None, now: dt.datetime
    ) -> dict[str, Totals]:
        """Summed counters of each subject: its pieces' counters, weighted."""
        out: dict[str, Totals] = {s.key: {} for s in subjects}
        stored = metrics - set(LIVE_METRICS)
        by_span: dict[tuple[dt.datetime, dt.datetime], set[str]] = defaultdict(set)
        for subject in subjects:
            for piece in subject.pieces:
                by_span[(piece.start, piece.end)].add(piece.code)
        spans = list(by_span) if stored else []
        # independent reads (each span, the live counts) on their own pooled connections
        reads = [self.store.totals(sorted(by_span[span]), stored, span[0], span[1], sector) for span in spans]
        wants_live = bool(metrics & set(LIVE_METRICS))
        if wants_live:
            reads.append(self.store.live_totals([m for s in subjects for m in self.memberships(s)], sector, now))
        results = await asyncio.gather(*reads)
        found = dict(zip(spans, results, strict=False))
        for subject in subjects:
            sums = out[subject.key]
            for piece in subject.pieces:
                for metric, value in found.get((piece.start, piece.end), {}).get(piece.code, {}).items():
                    sums[metric] = sums.get(metric, 0) + _weighted(value, piece.weight)
        if wants_live:
            live = results[-1]
            for subject in subjects:
                for metric, value in live.get(subject.key, {}).items():
                    out[subject.key][metric] = value
        return out

    async def series(
        self,
        kpi: KpiDefinition,
        subject: Subject,
        buckets: list[tuple[dt.datetime, dt.datetime]],
        granularity: calendar.Granularity,
        sector: str | None,
        now: dt.datetime,
    ) -> list[tuple[KpiValue, Basis]]:
        """One (value, basis) per bucket; basis "none" where no piece covers the bucket."""
        metrics = counters_of(kpi)
        stored = metrics - set(LIVE_METRICS)
        per_bucket: dict[dt.datetime, Totals] = defaultdict(dict)
        for piece in subject.pieces if stored else ():
            found = await self.store.series([piece.code], stored, piece.start, piece.end, granularity, sector)
            for bucket, values in found[piece.code].items():
                sums = per_bucket[bucket]
                for metric, value in values.items():
                    sums[metric] = sums.get(metric, 0) + _weighted(value, piece.weight)
        if metrics & set(LIVE_METRICS):
            live = await self.store.live_series(self.memberships(subject), granularity, sector, now)
            for bucket, values in live.items():
                per_bucket[bucket].update(values)
        return [
            (evaluate(kpi, per_bucket.get(start, {}), subject.population), subject.basis_between(start, end))
            for start, end in buckets
        ]

    async def snapshot_totals(self, subjects: list[Subject], now: dt.datetime) -> dict[str, dict[str, int]]:
        """Snapshot counters (``schemas.metrics.SNAPSHOT_METRICS``) of each subject now:
        projects of the subject's unit and every unit below it."""
        today = calendar.local(now).date()
        codes_of = {s.key: {s.code, *self.units.descendants(s.code)} for s in subjects}
        rows = await self.store.projects(sorted(set().union(*codes_of.values()))) if subjects else []
        by_code: dict[str, list[ProjectState]] = defaultdict(list)
        for row in rows:
            state = PROJECTS.from_row(row)
            by_code[state.unit_code].append(state)
        out = {}
        for subject in subjects:
            states = [state for code in codes_of[subject.key] for state in by_code.get(code, [])]
            out[subject.key] = snapshot_counters(states, today) if states else {}  # no project: no data
        return out


def _weighted(value: float, weight: float) -> float:
    return value if weight == 1.0 else value * weight
