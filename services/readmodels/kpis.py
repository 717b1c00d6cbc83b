"""KPI values of units over a period: counters from PostgreSQL, formulas from the registry.

The read side the KPI API (rankings, scorecards, scores) and the alerts worker (threshold
judgements) share. Every registry KPI has a value or "no data" here: event KPIs from summed
counters of the period, snapshot KPIs from entity state now, not-computable KPIs never.
"""

import datetime as dt
from dataclasses import dataclass

from schemas.kpi import KpiDefinition, KpiRegistry
from services.core import calendar
from services.core.kpis.formulas import KpiValue, counters_of, evaluate
from services.core.kpis.projects import snapshot_counters
from services.core.units import UnitRegistry
from services.readmodels.counters import KpiStore
from services.readmodels.tables import PROJECTS
from services.runtime.problems import InvalidQuery


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


class KpiReader:
    """Values of registry KPIs for units of the unit registry."""

    def __init__(self, store: KpiStore, kpis: KpiRegistry, units: UnitRegistry) -> None:
        self.store = store
        self.kpis = kpis
        self.units = units

    def leaves(self, code: str) -> list[str]:
        """The unit and every unit below it (whose live dossiers it counts)."""
        return [code, *self.units.descendants(code)]

    async def values(
        self, kpis: list[KpiDefinition], codes: list[str], period: Period, sector: str | None, now: dt.datetime
    ) -> dict[str, dict[str, KpiValue]]:
        """Every KPI for every unit over one period (snapshot KPIs: now)."""
        events = [k for k in kpis if k.computable and k.basis == "events"]
        snapshots = [k for k in kpis if k.computable and k.basis == "snapshot"]
        counters = set().union(*(counters_of(k) for k in events)) if events else set()
        totals = (
            await self.store.totals(
                codes, counters, period.start, period.end, sector, now, leaves={c: self.leaves(c) for c in codes}
            )
            if counters
            else {c: {} for c in codes}
        )
        snapshot = await self.snapshot_totals(codes, now) if snapshots else {}
        out: dict[str, dict[str, KpiValue]] = {}
        for code in codes:
            unit = self.units.get(code)
            population = unit.population if unit else None
            row = {k.id: evaluate(k, totals.get(code, {}), population) for k in events}
            row.update({k.id: evaluate(k, snapshot.get(code, {}), population) for k in snapshots})
            row.update({k.id: KpiValue(None, None, None, "no_data") for k in kpis if not k.computable})
            out[code] = row
        return out

    async def snapshot_totals(self, codes: list[str], now: dt.datetime) -> dict[str, dict[str, int]]:
        """Snapshot counters (``schemas.metrics.SNAPSHOT_METRICS``) of each unit now."""
        today = calendar.local(now).date()
        out = {}
        for code in codes:
            states = [PROJECTS.from_row(r) for r in await self.store.projects(self.leaves(code))]
            out[code] = snapshot_counters(states, today) if states else {}  # no project: no data
        return out
