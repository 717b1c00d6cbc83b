"""The Decision 766 style composite score of a unit, out of 100.

Points per indicator come from the registry (``score`` of each KPI, groups and weights in
``schemas.kpi.SCORE_GROUPS``). An indicator without data scores "no data" - its points leave
the maximum - never zero; one not computable from events likewise, with the registry's note.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.kpi import SCORE_GROUPS, KpiRegistry
from services.core.kpis.formulas import KpiValue


@dataclass(slots=True)
class GroupScore:
    name: str
    max_points: int
    points: float = 0.0
    points_with_data: float = 0.0
    indicators: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class CompositeScore:
    """Decision 766 style score of one unit: points earned over points that had data."""

    points: float
    max_points_with_data: float
    score: float | None  # out of 100, normalised over indicators with data
    groups: dict[str, GroupScore]
    no_data: list[str]
    not_computable: list[str]


def composite_score(registry: KpiRegistry, values: Mapping[str, KpiValue]) -> CompositeScore:
    """Score a unit from its KPI values. An indicator without data scores "no data" (its
    points leave the maximum), not zero; one not computable from events likewise."""
    groups = {key: GroupScore(name, points) for key, (name, points) in SCORE_GROUPS.items()}
    no_data: list[str] = []
    not_computable: list[str] = []
    for kpi in registry.kpis:
        if kpi.score is None:
            continue
        group = groups[kpi.score.group]
        entry: dict[str, Any] = {"kpi": kpi.id, "max_points": kpi.score.points}
        if kpi.kind == "not_computable":
            not_computable.append(kpi.id)
            entry.update(points=None, status="not_computable", note=kpi.note)
        else:
            result = values.get(kpi.id)
            if result is None or result.value is None:
                no_data.append(kpi.id)
                entry.update(points=None, status="no_data")
            else:
                rate = max(0.0, result.value / 100)
                earned = kpi.score.points * min(1.0, rate / kpi.score.full_at)
                group.points += earned
                group.points_with_data += kpi.score.points
                entry.update(points=round(earned, 4), value=result.value, status="scored")
        group.indicators.append(entry)
    points = sum(g.points for g in groups.values())
    possible = sum(g.points_with_data for g in groups.values())
    score = 100 * points / possible if possible > 0 else None
    return CompositeScore(points, possible, score, groups, no_data, not_computable)
