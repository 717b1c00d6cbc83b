"""KPI arithmetic (services/kpi_api/domain/formulas.py)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.kpi import KpiDefinition, load_registry
from schemas.metrics import ALL_METRICS, PROCESSING_HOURS_BUCKETS
from services.core.kpis.formulas import (
    KpiValue,
    counters_of,
    evaluate,
    histogram_metrics,
    quantile_hours,
    rank,
)
from services.core.kpis.score import composite_score

REGISTRY = load_registry()
KPI = {k.id: k for k in REGISTRY.kpis}


def kpi(**kw) -> KpiDefinition:
    base = dict(id="k", name_vi="k", name_en="k", unit="%", source="test", source_kind="derived")
    return KpiDefinition(**{**base, **kw})


# --- evaluate -------------------------------------------------------------------------------------


def test_ratio():
    out = evaluate(KPI["online_submission_rate"], {"dossier.received": 8, "dossier.received.online": 2})
    assert out.value == 25.0 and out.numerator == 2 and out.denominator == 8


def test_ratio_without_denominator_is_no_data_not_zero():
    for totals in ({}, {"dossier.received": 0, "dossier.received.online": 0}):
        out = evaluate(KPI["online_submission_rate"], totals)
        assert out.value is None and out.status == "no_data"
    zero = evaluate(KPI["online_submission_rate"], {"dossier.received": 4})
    assert zero.value == 0.0 and zero.status == "red"


def test_ratio_with_subtracted_terms():
    totals = {
        "dossier.received": 10,
        "dossier.rated_unsatisfied": 1,
        "dossier.resolved_late": 1,
        "dossier.open_overdue": 1,
    }
    out = evaluate(KPI["satisfaction_rate"], totals)
    assert out.value == pytest.approx(70.0) and out.numerator == 7


def test_ratio_sums_numerator_and_denominator_terms():
    totals = {"dossier.received": 6, "dossier.received.online": 3, "ticket.sold": 4, "ticket.sold.online": 1}
    assert evaluate(KPI["digital_take_up"], totals).value == pytest.approx(40.0)


def test_on_time_rate_counts_open_dossiers_not_yet_due():
    totals = {"dossier.received": 10, "dossier.resolved_on_time": 6, "dossier.open_not_due": 3}
    assert evaluate(KPI["dossier_on_time_rate"], totals).value == pytest.approx(90.0)


def test_scale_converts_seconds_to_hours():
    out = evaluate(KPI["avg_processing_hours"], {"dossier.processing_seconds": 7200 * 3, "dossier.resolved": 3})
    assert out.value == pytest.approx(2.0)


def test_sum_no_data_versus_zero():
    assert evaluate(KPI["ridership"], {}).value is None
    assert evaluate(KPI["ridership"], {"other": 5}).value is None
    zero = evaluate(KPI["ridership"], {"fare.boardings": 0})
    assert zero.value == 0 and zero.value is not None and zero.status == "no_target"
    assert evaluate(KPI["ridership"], {"fare.boardings": 12}).value == 12
    assert evaluate(KPI["elearning_minutes"], {"elearning.seconds": 600}).value == pytest.approx(10.0)


def test_per_100k():
    k = KPI["telemedicine_per_100k"]
    assert evaluate(k, {"telemedicine.consultations": 10}, population=200_000).value == pytest.approx(5.0)
    assert evaluate(k, {"telemedicine.consultations": 10}, population=None).value is None
    assert evaluate(k, {"telemedicine.consultations": 10}, population=0).value is None
    assert evaluate(k, {}, population=200_000).value is None
    assert evaluate(k, {"telemedicine.consultations": 0}, population=200_000).value == 0


def hist(counts: dict[int, int]) -> dict[str, int]:
    return {f"dossier.processing_le_{h}h": counts.get(h, 0) for h in PROCESSING_HOURS_BUCKETS}


def test_quantile_interpolates_inside_the_bucket():
    totals = {"dossier.resolved": 10, **hist({h: 10 for h in PROCESSING_HOURS_BUCKETS})}
    assert evaluate(KPI["processing_p50_hours"], totals).value == pytest.approx(2.0)  # half of 0..4 h
    cumulative = {4: 0, 8: 0, 24: 5, 48: 10, 72: 10, 120: 10, 168: 10, 240: 10, 360: 10, 720: 10}
    totals = {"dossier.resolved": 10, **hist(cumulative)}
    assert evaluate(KPI["processing_p50_hours"], totals).value == pytest.approx(24.0)
    assert evaluate(KPI["processing_p90_hours"], totals).value == pytest.approx(24 + 24 * 0.8)


def test_quantile_without_resolved_dossiers_is_no_data():
    out = evaluate(KPI["processing_p50_hours"], hist({}))
    assert out.value is None and out.status == "no_data"


def test_quantile_caps_at_the_last_bound():
    totals = {"dossier.resolved": 10, **hist({720: 5})}  # half took longer than 720 h
    assert evaluate(KPI["processing_p90_hours"], totals).value == 720.0


cumulative_histograms = st.lists(
    st.integers(0, 50), min_size=len(PROCESSING_HOURS_BUCKETS), max_size=len(PROCESSING_HOURS_BUCKETS)
).map(lambda xs: [sum(xs[: i + 1]) for i in range(len(xs))])


@settings(max_examples=200, deadline=None)
@given(cumulative_histograms, st.integers(0, 30), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_quantile_is_monotone_and_bounded(cum, beyond, q1, q2):
    total = cum[-1] + beyond
    pairs = list(zip(PROCESSING_HOURS_BUCKETS, cum, strict=True))
    a, b = quantile_hours(min(q1, q2), total, pairs), quantile_hours(max(q1, q2), total, pairs)
    if total == 0:
        assert a is None and b is None
        return
    assert 0 <= a <= b <= PROCESSING_HOURS_BUCKETS[-1]


def test_counters_of_expands_the_histogram():
    names = counters_of(KPI["processing_p50_hours"])
    assert set(histogram_metrics()) <= names and "dossier.resolved" in names
    assert not any("*" in n for n in names)
    for k in REGISTRY.kpis:
        assert counters_of(k) <= ALL_METRICS, k.id


# --- status bands -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [(None, "no_data"), (100, "green"), (95, "green"), (94.99, "amber"), (80, "amber"), (79.99, "red"), (0, "red")],
)
def test_status_higher_is_better(value, status):
    assert KPI["dossier_on_time_rate"].status(value) == status  # green ≥ 95, red < 80


@pytest.mark.parametrize(
    ("value", "status"),
    [(None, "no_data"), (0, "green"), (72, "green"), (72.01, "amber"), (168, "amber"), (168.01, "red")],
)
def test_status_lower_is_better(value, status):
    assert KPI["avg_processing_hours"].status(value) == status  # green ≤ 72, red > 168


def test_status_without_bands_is_no_target():
    assert KPI["ridership"].status(5) == "no_target"
    assert KPI["ridership"].status(None) == "no_data"


# --- rank -------------------------------------------------------------------------------------------


def test_competition_ranking():
    assert rank([10, 30, 20, 30, None], "higher") == [4, 1, 3, 1, None]
    assert rank([10, 30, 20, 30, None], "lower") == [1, 3, 2, 3, None]
    assert rank([], "higher") == [] and rank([None, None], "lower") == [None, None]
    assert rank([5, 5, 5], "higher") == [1, 1, 1]


values = st.lists(st.none() | st.integers(-5, 5).map(float) | st.floats(-1e6, 1e6, allow_nan=False), max_size=15)


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(["higher", "lower"]))
def test_rank_laws(vs, direction):
    ranks = rank(vs, direction)
    assert len(ranks) == len(vs)
    better = (lambda a, b: a > b) if direction == "higher" else (lambda a, b: a < b)
    present = [v for v in vs if v is not None]
    for v, r in zip(vs, ranks, strict=True):
        if v is None:
            assert r is None
        else:
            assert r == 1 + sum(better(w, v) for w in present)  # competition ranking
    pairs = sorted(
        ((v, r) for v, r in zip(vs, ranks, strict=True) if v is not None),
        key=lambda p: p[0],
        reverse=direction == "higher",
    )
    assert [r for _, r in pairs] == sorted(r for _, r in pairs)  # non-decreasing along the order
    for (v1, r1), (v2, r2) in zip(pairs, pairs[1:]):
        assert (v1 == v2) == (r1 == r2)


# --- composite score ----------------------------------------------------------------------------------

SCORED = [k for k in REGISTRY.kpis if k.score is not None and k.kind != "not_computable"]
NOT_COMPUTABLE = [k.id for k in REGISTRY.kpis if k.score is not None and k.kind == "not_computable"]


def v(value):
    return KpiValue(value, None, None, "no_target")


def test_every_rate_at_100_percent_scores_100():
    result = composite_score(REGISTRY, {k.id: v(100.0) for k in SCORED})
    assert result.score == pytest.approx(100.0)
    assert result.points == pytest.approx(sum(k.score.points for k in SCORED))
    assert result.max_points_with_data == pytest.approx(result.points)
    assert result.no_data == [] and sorted(result.not_computable) == sorted(NOT_COMPUTABLE)


def test_every_rate_at_zero_scores_zero():
    assert composite_score(REGISTRY, {k.id: v(0.0) for k in SCORED}).score == 0


def test_no_data_anywhere_has_no_score():
    result = composite_score(REGISTRY, {})
    assert result.score is None and result.points == 0
    assert sorted(result.no_data) == sorted(k.id for k in SCORED)
    nothing = composite_score(REGISTRY, {k.id: v(None) for k in SCORED})
    assert nothing.score is None


def test_an_indicator_without_data_leaves_the_maximum_rather_than_scoring_zero():
    values = {k.id: v(100.0) for k in SCORED}
    del values["dossier_on_time_rate"]
    result = composite_score(REGISTRY, values)
    assert result.score == pytest.approx(100.0)
    assert result.no_data == ["dossier_on_time_rate"]
    total = sum(k.score.points for k in SCORED)
    assert result.max_points_with_data == pytest.approx(total - 20)
    scored_zero = composite_score(REGISTRY, {**values, "dossier_on_time_rate": v(0.0)})
    assert scored_zero.score == pytest.approx(100 * (total - 20) / total)


def test_full_at_caps_the_points():
    only = {"online_submission_rate": v(50.0)}  # full points at ≥ 50 %
    res = composite_score(REGISTRY, only)
    assert res.groups["online_services"].points == pytest.approx(12)
    assert res.score == pytest.approx(100.0)
    over = composite_score(REGISTRY, {"online_submission_rate": v(100.0)})
    assert over.groups["online_services"].points == pytest.approx(12)  # capped, not 24
    half = composite_score(REGISTRY, {"online_submission_rate": v(25.0)})
    assert half.groups["online_services"].points == pytest.approx(6)
    assert half.score == pytest.approx(50.0)


def test_negative_values_earn_nothing():
    res = composite_score(REGISTRY, {"e_result_rate": v(-20.0)})
    assert res.points == 0 and res.score == 0


def test_group_points_and_entries():
    res = composite_score(REGISTRY, {k.id: v(100.0) for k in SCORED})
    assert set(res.groups) == {
        "publicity",
        "progress",
        "digitisation",
        "online_services",
        "online_payment",
        "satisfaction",
    }
    assert sum(g.max_points for g in res.groups.values()) == 100
    assert res.groups["progress"].points == pytest.approx(20)
    assert res.groups["publicity"].points == 0 and res.groups["publicity"].points_with_data == 0
    entries = {e["kpi"]: e for g in res.groups.values() for e in g.indicators}
    assert entries["publicity_transparency"]["status"] == "not_computable"
    assert entries["dossier_on_time_rate"]["status"] == "scored"
    assert set(entries) == {k.id for k in REGISTRY.kpis if k.score is not None}


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from([k.id for k in SCORED]), st.none() | st.floats(-50, 200)))
def test_composite_score_is_between_0_and_100(raw):
    res = composite_score(REGISTRY, {k: v(x) for k, x in raw.items()})
    assert res.points <= res.max_points_with_data + 1e-9
    if res.score is None:
        assert res.max_points_with_data == 0
    else:
        assert 0 <= res.score <= 100 + 1e-9
    assert set(res.no_data) == {k.id for k in SCORED if raw.get(k.id) is None}
    assert not any(math.isnan(g.points) for g in res.groups.values())
