"""Property: across the 2025 reform, every KPI the API serves for today's communes equals the
catalogue formula applied by hand to the events, with the succession file applied by hand:
before a commune existed, each predecessor's events count wholly (``full``) or by an equal
share among the communes it was split into (``partial``); after, the commune's own events.

Random events at the old communes of Hàm Rồng, Hạc Thành and Đông Sơn before 2025-07-01 and
at the new ones after (code reuse included: 14758 and 16378 are old and new), dossiers that
outlive their commune dropped where their unit no longer exists; daily series restated and
observed, and the commune ranking, compared point by point.
"""

import asyncio
import csv
import datetime as dt
import math
import os
from collections import defaultdict
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from infra.migrate import REFERENCE_DIR, reference_registry
from schemas.kpi import load_registry
from services.aggregator.adapters.postgres import PgCounterStore
from services.core.calendar import VN
from tests.support.api import operator_client
from tests.support.event_strategies import event_sets
from tests.support.naive_kpis import Scope, kpi_value, unique
from tests.support.oracle import count_events

pytestmark = pytest.mark.integration

REGISTRY = reference_registry()
KPIS = [k for k in load_registry().kpis if k.computable and k.basis == "events"]
REFORM = dt.datetime(2025, 7, 1, tzinfo=VN)
START = REFORM - dt.timedelta(days=6)
END = REFORM + dt.timedelta(days=6)
NOW = END + dt.timedelta(days=2)
NEW = ["14758", "14797", "16378"]  # Hàm Rồng, Hạc Thành, Đông Sơn (new)
EXAMPLES = int(os.environ.get("SMARTCITY_PROPERTY_EXAMPLES", 30 if os.environ.get("SMARTCITY_FULL") == "1" else 10))


def succession() -> dict[str, list[tuple[str, float]]]:
    """new code → [(old code, weight)], read from the reference file by hand."""
    rows = list(csv.DictReader((REFERENCE_DIR / "thanh_hoa_succession_2025.csv").open(encoding="utf-8")))
    parts: dict[str, int] = defaultdict(int)
    for row in rows:
        parts[row["old_code"]] += 1
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for row in rows:
        share = 1.0 if row["share"] == "full" else 1.0 / parts[row["old_code"]]
        out[row["new_code"]].append((row["old_code"], share))
    return out


SUCCESSION = succession()
OLD = sorted({old for code in NEW for old, _w in SUCCESSION[code]})
POPULATION = {
    row["code"]: int(row["population"])
    for row in csv.DictReader((REFERENCE_DIR / "thanh_hoa_population_2025.csv").open(encoding="utf-8"))
}
MINUTES = int((END - START).total_seconds() // 60)
BEFORE = int((REFORM - START).total_seconds() // 60)
PLACES = st.one_of(
    st.tuples(st.sampled_from(OLD), st.integers(0, BEFORE - 1)),
    st.tuples(st.sampled_from(NEW), st.integers(BEFORE, MINUTES - 1)),
)


def valid(code: str, at: dt.datetime) -> bool:
    return REGISTRY.check(code, at) is None


def pieces(code: str, restated: bool) -> list[tuple[str, dt.datetime, dt.datetime, float]]:
    """The restatement written by hand: the commune's own events from the reform, and its
    predecessors' (weighted) before."""
    own = [(code, REFORM, END + dt.timedelta(days=30), 1.0)]
    if not restated:
        return own
    return own + [(old, START - dt.timedelta(days=30), REFORM, weight) for old, weight in SUCCESSION[code]]


def close(api: float | None, naive: float | None) -> bool:
    if api is None or naive is None:
        return api is None and naive is None
    return math.isclose(api, naive, rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def api(servers: Any) -> Any:
    from tests.support.servers import fresh_database

    dsn = asyncio.run(fresh_database(servers))
    with operator_client(dsn, NOW.astimezone(dt.UTC)) as client:
        yield client, dsn


async def load(dsn: str, events: list[dict[str, Any]]) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "TRUNCATE counters_hourly, counters_daily, counters_monthly, dossiers, documents, projects, seen_events"
            )
        await count_events(PgCounterStore(pool, "reform"), events, REGISTRY, NOW.date())
    finally:
        await pool.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    events=event_sets(PLACES, START, valid),
    target=st.sampled_from(NEW),
    history=st.sampled_from(["restated", "observed"]),
    kpi=st.sampled_from([k.id for k in KPIS]),
)
def test_restated_values_equal_the_succession_applied_by_hand(
    api: Any, events: list[dict[str, Any]], target: str, history: str, kpi: str
) -> None:
    client, dsn = api
    note(f"events={events}\ntarget={target} history={history}")
    asyncio.run(load(dsn, events))
    distinct = unique(events)
    by_hand = pieces(target, history == "restated")
    params = {
        "unit": target,
        "from": START.isoformat(),
        "to": END.isoformat(),
        "granularity": "day",
        "history": history,
    }
    for definition in KPIS:
        series = client.get(f"/v1/kpis/{definition.id}/series", params=params)
        assert series.status_code == 200, series.text
        for point in series.json()["items"]:
            a, b = dt.datetime.fromisoformat(point["start"]), dt.datetime.fromisoformat(point["end"])
            scope = Scope(set(), a, b, None, NOW, pieces=by_hand, population=POPULATION[target])
            expected = kpi_value(definition.id, distinct, scope)
            assert close(point["value"], expected), (definition.id, point, expected)
            before = b <= REFORM
            assert point["basis"] == ("observed" if not before else "none" if history == "observed" else point["basis"])
            if before and history == "restated":
                approximate = any(w < 1 for _old, w in SUCCESSION[target])
                assert point["basis"] == ("restated_approximate" if approximate else "restated_exact")
    ranking = client.get(
        f"/v1/kpis/{kpi}/ranking",
        params={"level": "commune", "from": START.isoformat(), "to": END.isoformat(), "history": history},
    )
    assert ranking.status_code == 200, ranking.text
    rows = {row["unit"]: row for row in ranking.json()["items"]}
    for code in NEW:
        scope = Scope(
            set(), START, END, None, NOW, pieces=pieces(code, history == "restated"), population=POPULATION[code]
        )
        assert close(rows[code]["value"], kpi_value(kpi, distinct, scope)), (kpi, code, rows[code])
