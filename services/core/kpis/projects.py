"""E-government projects: ``project_stage_counts`` and ``project_on_schedule_rate`` are
computed here.

Stage and progress are snapshots: the latest by event time wins, so a late report never
overwrites a newer one. The two project KPIs are *snapshot* KPIs (``basis = "snapshot"`` in
the registry): formulas over counters computed now from project state
(:func:`snapshot_counters`), not sums of events over a period.
"""

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

from schemas.events import projects as ev
from schemas.events.base import EventData
from schemas.events.projects import PROJECT_STAGES

ScheduleStatus = Literal["completed", "on_schedule", "behind", "overdue", "no_report"]


@dataclass(frozen=True, slots=True)
class ProjectState:
    project_id: str
    sector: str
    unit_code: str
    title: str | None = None
    stage: str | None = None
    stage_changed_at: dt.datetime | None = None
    planned_completion: dt.date | None = None
    percent_complete: float | None = None
    planned_percent: float | None = None
    progress_reported_at: dt.datetime | None = None


def apply(state: ProjectState, data: EventData, at: dt.datetime, sector: str, unit: str) -> ProjectState:
    if isinstance(data, ev.ProjectStageChanged):
        if state.stage_changed_at is not None and at < state.stage_changed_at:
            # an older stage arriving late does not win, but may still supply a missing plan
            return replace(
                state,
                title=state.title or data.title,
                planned_completion=state.planned_completion or data.planned_completion,
            )
        return replace(
            state,
            sector=sector,
            unit_code=unit,
            stage=data.stage,
            stage_changed_at=at,
            title=data.title or state.title,
            planned_completion=data.planned_completion or state.planned_completion,
        )
    if isinstance(data, ev.ProjectProgressReported):
        if state.progress_reported_at is not None and at < state.progress_reported_at:
            return state
        return replace(
            state,
            percent_complete=data.percent_complete,
            planned_percent=data.planned_percent,
            progress_reported_at=at,
        )
    raise TypeError(f"not a project event: {type(data).__name__}")


def schedule_status(state: ProjectState, today: dt.date) -> ScheduleStatus:
    """Where a project stands against its plan on ``today``."""
    if state.stage == "completed":
        return "completed"
    if state.planned_completion is not None and today > state.planned_completion:
        return "overdue"
    if state.percent_complete is None or state.planned_percent is None:
        return "no_report"
    return "on_schedule" if state.percent_complete >= state.planned_percent else "behind"


def snapshot_counters(states: list[ProjectState], today: dt.date) -> dict[str, int]:
    """The snapshot counters of a set of projects on ``today``: ``project.count``,
    ``project.active`` (not completed), ``project.on_schedule`` (active, latest progress at or
    above plan and not past the planned completion) and ``project.stage.<stage>``."""
    active = [s for s in states if s.stage != "completed"]
    out = {
        "project.count": len(states),
        "project.active": len(active),
        "project.on_schedule": sum(1 for s in active if schedule_status(s, today) == "on_schedule"),
    }
    for stage in PROJECT_STAGES:
        out[f"project.stage.{stage}"] = sum(1 for s in states if s.stage == stage)
    return out
