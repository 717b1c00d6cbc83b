"""E-government project state. Stage and progress are snapshots: the latest by event time wins,
so a late report never overwrites a newer one."""

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

from schemas.events import projects as ev
from schemas.events.base import EventData

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
