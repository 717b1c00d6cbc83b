"""E-government projects, emitted by any sector."""

import datetime as dt
from typing import Literal

from pydantic import Field

from schemas.events.base import EventData, Ref

ProjectStage = Literal["proposal", "design", "appraisal", "in_progress", "completed"]
PROJECT_STAGES: tuple[str, ...] = ("proposal", "design", "appraisal", "in_progress", "completed")


class ProjectStageChanged(EventData):
    """A project moved to a stage (proposal → design → feasibility appraisal → in progress → completed)."""

    ENTITY = "project"
    VERB = "stage_changed"

    project_id: Ref
    stage: ProjectStage
    title: str | None = Field(default=None, max_length=200, description="Project title (public).")
    planned_completion: dt.date | None = None


class ProjectProgressReported(EventData):
    """Progress of a project against its plan, as reported by its owner."""

    ENTITY = "project"
    VERB = "progress_reported"

    project_id: Ref
    percent_complete: float = Field(ge=0, le=100)
    planned_percent: float = Field(ge=0, le=100, description="Progress the plan expects by now.")


PROJECT_EVENTS: tuple[type[EventData], ...] = (ProjectStageChanged, ProjectProgressReported)
