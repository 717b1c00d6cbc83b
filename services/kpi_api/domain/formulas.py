"""KPI arithmetic: formula evaluation, status against bands, the composite score, ranking.

Pure functions over summed counters. "No data" (None) is kept apart from zero everywhere:
a ratio whose denominator is 0 has no data; a sum none of whose counters has a row in the
period has no data.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.kpi import SCORE_GROUPS, KpiDefinition, KpiRegistry, Status
from schemas.metrics import PROCESSING_HOURS_BUCKETS

Totals = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class KpiValue:
    value: float | None
    numerator: float | None
    denominator: float | None
    status: Status


def _sum(terms: Sequence[str], totals: Totals) -> int:
    total = 0
    for term in terms:
        if term.startswith("-"):
            total -= totals.get(term[1:], 0)
        else:
            total += totals.get(term, 0)
    return total


def histogram_metrics() -> tuple[str, ...]:
    return tuple(f"dossier.processing_le_{h}h" for h in PROCESSING_HOURS_BUCKETS)


def counters_of(kpi: KpiDefinition) -> frozenset[str]:
    """Every stored or live counter a KPI's formula reads."""
    names = set(kpi.metrics)
    if kpi.kind == "quantile":
        names = {n for n in names if not n.endswith("_le_*h")} | set(histogram_metrics())
    return frozenset(names)


def quantile_hours(q: float, total: int, cumulative: Sequence[tuple[int, int]]) -> float | None:
    """The q-quantile of a cumulative histogram [(upper bound in hours, count ≤ bound)],
    interpolated linearly inside the bucket; capped at the last bound."""
    if total <= 0:
        return None
    wanted = q * total
    lower_bound, lower_count = 0, 0
    for bound, count in cumulative:
        if count >= wanted:
            span = count - lower_count
            inside = (wanted - lower_count) / span if span else 0.0
            return lower_bound + (bound - lower_bound) * inside
        lower_bound, lower_count = bound, count
    return float(cumulative[-1][0]) if cumulative else None


def evaluate(kpi: KpiDefinition, totals: Totals, population: int | None = None) -> KpiValue:
    """Value of one KPI from summed counters (of one unit, period and sector selection)."""
    value: float | None = None
    numerator: float | None = None
    denominator: float | None = None
    if kpi.kind == "ratio":
        numerator, denominator = _sum(kpi.numerator, totals), _sum(kpi.denominator, totals)
        value = kpi.scale * numerator / denominator if denominator > 0 else None
    elif kpi.kind == "sum":
        if any(t.removeprefix("-") in totals for t in kpi.numerator):
            numerator = _sum(kpi.numerator, totals)
            value = kpi.scale * numerator
    elif kpi.kind == "per_100k":
        if population and any(t.removeprefix("-") in totals for t in kpi.numerator):
            numerator, denominator = _sum(kpi.numerator, totals), population / 100_000
            value = numerator / denominator
    elif kpi.kind == "quantile":
        assert kpi.quantile is not None
        denominator = _sum(kpi.denominator, totals)
        cumulative = [(h, totals.get(f"dossier.processing_le_{h}h", 0)) for h in PROCESSING_HOURS_BUCKETS]
        value = quantile_hours(kpi.quantile, int(denominator), cumulative)
    return KpiValue(value, numerator, denominator, kpi.status(value))


def rank(values: Sequence[float | None], direction: str) -> list[int | None]:
    """Competition ranking (1, 2, 2, 4): equal values share a rank; no data is unranked."""
    ordered = sorted((v for v in values if v is not None), reverse=direction == "higher")
    first: dict[float, int] = {}
    for position, value in enumerate(ordered, start=1):
        first.setdefault(value, position)
    return [None if v is None else first[v] for v in values]


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
