"""Registry formulas: every KPI's value from summed counters, its status, ranking.

Pure functions. "No data" (None) is kept apart from zero everywhere: a ratio whose
denominator is 0 has no data; a sum none of whose counters has a row in the period has no
data; a not-computable KPI never has data. Counters may be fractional when history is
restated from split predecessors.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from schemas.kpi import KpiDefinition, Status
from schemas.metrics import PROCESSING_HOURS_BUCKETS

Totals = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class KpiValue:
    value: float | None
    numerator: float | None
    denominator: float | None
    status: Status


def _sum(terms: Sequence[str], totals: Totals) -> float:
    total: float = 0  # stays an int while the counters are
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


def quantile_hours(q: float, total: float, cumulative: Sequence[tuple[int, float]]) -> float | None:
    """The q-quantile of a cumulative histogram [(upper bound in hours, count ≤ bound)],
    interpolated linearly inside the bucket; capped at the last bound."""
    if total <= 0:
        return None
    wanted = q * total
    lower_bound, lower_count = 0, 0.0
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
    elif kpi.kind == "per_capita":
        if population and any(t.removeprefix("-") in totals for t in kpi.numerator):
            numerator, denominator = _sum(kpi.numerator, totals), population / kpi.per
            value = numerator / denominator
    elif kpi.kind == "quantile":
        assert kpi.quantile is not None
        denominator = _sum(kpi.denominator, totals)
        cumulative = [(h, totals.get(f"dossier.processing_le_{h}h", 0.0)) for h in PROCESSING_HOURS_BUCKETS]
        value = quantile_hours(kpi.quantile, denominator, cumulative)
    return KpiValue(value, numerator, denominator, kpi.status(value))


def rank(values: Sequence[float | None], direction: str) -> list[int | None]:
    """Competition ranking (1, 2, 2, 4): equal values share a rank; no data is unranked."""
    ordered = sorted((v for v in values if v is not None), reverse=direction == "higher")
    first: dict[float, int] = {}
    for position, value in enumerate(ordered, start=1):
        first.setdefault(value, position)
    return [None if v is None else first[v] for v in values]
