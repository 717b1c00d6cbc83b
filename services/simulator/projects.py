"""E-government projects: a portfolio of 40, reported every Monday between 09:00 and 10:00.

On :data:`EPOCH` the portfolio is the founding article's snapshot - 13 completed, 10 in
progress, 2 in appraisal, 2 in design, 13 proposals - and each project moves on through the
stages at dates drawn from the seed; projects of lagging districts move slower and report
progress behind plan, and some finish past their planned completion. Every Monday at 09:00
(local) each project's owner reports its current stage (``stage_changed``: the latest report
wins) and, while in progress, its progress against plan. So the portfolio's events are a pure
function of the hour like every other event, and a history starting on any day knows every
project after its first Monday.

A project belongs to a commune of its district; from 1 July 2025 to the commune that took
over that commune's work (the carrier of its events).
"""

import datetime as dt
from dataclasses import dataclass

from schemas.events.projects import PROJECT_STAGES
from services.core.calendar import VN
from services.core.units import Unit, UnitRegistry
from services.simulator.events import HourBatch
from services.simulator.profiles import Profiles, seeded

EPOCH = dt.date(2024, 1, 1)
STAGE_COUNTS = {"completed": 13, "in_progress": 10, "appraisal": 2, "design": 2, "proposal": 13}
SECTORS = ("education", "health", "transport", "culture")


@dataclass(frozen=True, slots=True)
class Project:
    project_id: str
    title: str
    sector: str
    home: Unit
    starts: tuple[dt.date, ...]  # the day each stage of PROJECT_STAGES began (EPOCH or earlier for the first)
    first: int  # index of its stage on EPOCH
    planned_completion: dt.date
    planned_days: float  # in progress → completed, as planned
    actual_days: float  # … as it goes

    def stage_on(self, day: dt.date) -> str:
        index = self.first
        while index + 1 < len(PROJECT_STAGES) and self.starts[index + 1] <= day:
            index += 1
        return PROJECT_STAGES[index]

    def progress_on(self, day: dt.date) -> tuple[float, float]:
        """(percent complete, planned percent) on ``day`` while in progress."""
        elapsed = max(0, (day - self.starts[PROJECT_STAGES.index("in_progress")]).days)
        planned = min(100.0, 100 * elapsed / self.planned_days)
        actual = min(99.0, 100 * elapsed / self.actual_days)
        return round(actual, 1), round(planned, 1)


def _timeline(seed: int, n: int, first: int, lagging: bool) -> tuple[tuple[dt.date, ...], dt.date, float, float]:
    """(stage starts, planned completion, planned days, actual days) of project ``n``."""
    r = seeded(seed, "project", n)
    slow = 1.6 if lagging else 1.0
    starts = [EPOCH] * len(PROJECT_STAGES)
    in_progress = PROJECT_STAGES.index("in_progress")
    planned_days = r.uniform(300, 600)
    actual_days = planned_days + (r.uniform(60, 240) if lagging else r.uniform(-20, 30))
    if first >= in_progress:  # already under way (or done) on EPOCH
        starts[in_progress] = EPOCH - dt.timedelta(days=r.uniform(30, 280) if first == in_progress else 900)
    for index in range(first + 1, len(PROJECT_STAGES)):
        gap = actual_days if index == in_progress + 1 else r.uniform(90, 300) * slow
        starts[index] = starts[index - 1] + dt.timedelta(days=gap)
    planned = starts[in_progress] + dt.timedelta(days=planned_days)
    return tuple(starts), planned, planned_days, actual_days


def portfolio(registry: UnitRegistry, profiles: Profiles, seed: int) -> list[Project]:
    """The 40 projects, spread over the districts that existed on :data:`EPOCH`."""
    districts = registry.at_level(2, EPOCH)
    homes = [c for d in districts for c in [registry.get(k, EPOCH) for k in registry.children(d.code, EPOCH)] if c]
    if not districts:
        homes = registry.at_level(3, EPOCH) or registry.at_level(3)
    if not homes:
        return []
    by_district: dict[str, list[Unit]] = {}
    for unit in homes:
        district = profiles.district(unit)
        by_district.setdefault(district.code if district else "", []).append(unit)
    groups = [by_district[k] for k in sorted(by_district)]
    out = []
    stages = [(stage, i) for stage in PROJECT_STAGES[::-1] for i in range(STAGE_COUNTS[stage])]
    for n, (stage, i) in enumerate(stages):
        group = groups[(n * 7) % len(groups)]
        home = group[seeded(seed, "project-home", n).randrange(len(group))]
        first = PROJECT_STAGES.index(stage)
        starts, planned, planned_days, actual_days = _timeline(seed, n, first, profiles.lagging(home))
        out.append(
            Project(
                project_id=f"DA-{seed}-{n + 1:02d}",
                title=f"E-government project {stage} {i + 1}",
                sector=SECTORS[n % len(SECTORS)],
                home=home,
                starts=starts,
                first=first,
                planned_completion=planned,
                planned_days=planned_days,
                actual_days=actual_days,
            )
        )
    return out


def is_report_hour(hour: int) -> bool:
    local = dt.datetime.fromtimestamp(hour * 3600, VN)
    return local.weekday() == 0 and local.hour == 9


def report(batch: HourBatch, projects: list[Project]) -> None:
    """Every project's weekly report, into the hour's batch (call in a report hour)."""
    for n, project in enumerate(projects):
        at = batch.hour * 3600 + 60 + n * 30
        day = dt.datetime.fromtimestamp(at, VN).date()
        unit = batch.carrier(project.home, at)
        if unit is None:
            continue
        stage = project.stage_on(day)
        data = {
            "project_id": project.project_id,
            "stage": stage,
            "title": project.title,
            "planned_completion": project.planned_completion.isoformat(),
        }
        batch.schedule(project.sector, "project", "stage_changed", unit, at, data)
        if stage == "in_progress":
            percent, planned = project.progress_on(day)
            progress = {"project_id": project.project_id, "percent_complete": percent, "planned_percent": planned}
            batch.schedule(project.sector, "project", "progress_reported", unit, at + 5, progress)
