"""Open and overdue dossiers now, and e-government projects: the KPI API's answers about
entities rather than periods.

A unit's open dossiers are those received in it or below it while it existed, and those an
ended unit left to it (``services.core.history.carried``: a commune of today carries the
open dossiers of the communes it was formed from).
"""

import datetime as dt
from typing import Any

from schemas.events.projects import PROJECT_STAGES
from schemas.kpi import KpiRegistry
from schemas.kpi_api import OverdueDossierPublic, ProjectPublic
from services.core import calendar
from services.core.history import carried, day_start
from services.core.kpis.formulas import evaluate
from services.core.kpis.projects import schedule_status, snapshot_counters
from services.core.units import ONE_DAY, Unit, UnitRegistry
from services.readmodels.counters import KpiStore, Membership
from services.readmodels.tables import DOSSIERS, PROJECTS
from services.runtime.problems import InvalidQuery

EARLIEST = dt.date(1970, 1, 1)


class EntityService:
    def __init__(self, store: KpiStore, kpis: KpiRegistry, units: UnitRegistry) -> None:
        self.store = store
        self.kpis = kpis
        self.units = units

    def open_work(self, unit: Unit, today: dt.date) -> list[Membership]:
        """Where ``unit``'s open dossiers are: (code, reception interval) of it and below it,
        and of the ended units whose work it carries."""
        out = []
        for holder in carried(self.units, unit):
            first = holder.valid_from or EARLIEST
            last = min(holder.valid_to or today, today)
            for code, a, b in self.units.memberships(holder, first, last):
                out.append(Membership(unit.key, code, day_start(a), day_start(b + ONE_DAY), 1.0))
        return out

    async def overdue(
        self, unit: Unit, now: dt.datetime, after: tuple[dt.datetime, str] | None, limit: int
    ) -> tuple[list[dict[str, Any]], list[OverdueDossierPublic]]:
        memberships = self.open_work(unit, calendar.local(now).date())
        counts = await self.store.overdue_counts(memberships, now)
        per_unit = []
        for code in sorted(counts):
            found = self.units.get(code)
            per_unit.append(
                {
                    "unit": code,
                    "unit_name": found.name if found else code,
                    "open": counts[code][0],
                    "overdue": counts[code][1],
                }
            )
        items = []
        for row in await self.store.overdue_dossiers(memberships, now, after, limit):
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
        self, unit: Unit, stage: str | None, now: dt.datetime
    ) -> tuple[dict[str, int], float | None, list[ProjectPublic]]:
        if stage is not None and stage not in PROJECT_STAGES:
            raise InvalidQuery(f"stage must be one of {', '.join(PROJECT_STAGES)}")
        codes = sorted({unit.code, *self.units.descendants(unit.code)})
        states = [PROJECTS.from_row(r) for r in await self.store.projects(codes)]
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
