"""Property: for random event sets, every KPI the API serves equals the catalogue formula
applied directly to the events (tests/support/naive_kpis.py), for random units, levels,
periods, sectors and granularities.

Events are decoded and committed by the aggregator's own store (real PostgreSQL, same SQL
as production); the KPI API runs in-process with a fixed clock so "now" is known.
"""

import asyncio
import csv
import datetime as dt
import json
import math
import os
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from infra.migrate import REFERENCE_DIR as REFERENCE
from infra.migrate import reference_registry
from schemas.kpi import load_registry
from services.aggregator.adapters.postgres import PgCounterStore
from services.core.calendar import VN
from tests.support.api import operator_client
from tests.support.event_strategies import SECTORS, event_sets
from tests.support.naive_kpis import Scope, kpi_value, unique
from tests.support.oracle import count_events

pytestmark = pytest.mark.integration

REGISTRY = reference_registry()
KPIS = [k for k in load_registry().kpis if k.computable and k.basis == "events"]
UNITS = ["390", "392", "395", "400", "404", "380"]  # districts the events use
WINDOW_START = dt.datetime(2025, 5, 1, tzinfo=VN)
NOW = WINDOW_START + dt.timedelta(days=12, hours=3)
# SMARTCITY_PROPERTY_EXAMPLES=2000 explores far more inputs when hunting discrepancies
EXAMPLES = int(os.environ.get("SMARTCITY_PROPERTY_EXAMPLES", 40 if os.environ.get("SMARTCITY_FULL") == "1" else 15))


PLACES = st.tuples(st.sampled_from(UNITS), st.integers(0, 14 * 24 * 60))
# residents by hand from the census file (2019, districts): the province is their sum
CENSUS = {
    row["code"]: int(row["population"]) for row in csv.DictReader((REFERENCE / "thanh_hoa_population_2019.csv").open())
}


def population(code: str) -> int:
    return CENSUS[code] if code in CENSUS else sum(CENSUS.values())


@st.composite
def periods(draw: st.DrawFn) -> tuple[dt.datetime, dt.datetime]:
    a = draw(st.integers(0, 14 * 24))
    b = draw(st.integers(a + 1, 15 * 24))
    return WINDOW_START + dt.timedelta(hours=a), WINDOW_START + dt.timedelta(hours=b)


async def load(dsn: str, events: list[dict[str, Any]]) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "TRUNCATE counters_hourly, counters_daily, counters_monthly, dossiers, documents, projects, seen_events"
            )
        await count_events(PgCounterStore(pool, "prop"), events, REGISTRY, NOW.date())
    finally:
        await pool.close()


def close(api: float | None, naive: float | None) -> bool:
    if api is None or naive is None:
        return api is None and naive is None
    return math.isclose(api, naive, rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def api(dsn: str) -> Any:
    with operator_client(dsn, NOW.astimezone(dt.UTC)) as client:
        yield client, dsn


@pytest.fixture(scope="module")
def dsn(servers: Any) -> str:  # module-scoped database for the property test
    from tests.support.servers import fresh_database

    return asyncio.run(fresh_database(servers))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    events=event_sets(PLACES, WINDOW_START),
    kpi=st.sampled_from([k.id for k in KPIS]),
    period=periods(),
    granularity=st.sampled_from(["hour", "day", "week"]),
    sector=st.sampled_from([None, *SECTORS]),
    target=st.sampled_from(["38", *UNITS]),
)
def test_api_values_equal_catalogue_formulas(
    api: Any,
    events: list[dict[str, Any]],
    kpi: str,
    period: tuple[dt.datetime, dt.datetime],
    granularity: str,
    sector: str | None,
    target: str,
) -> None:
    client, dsn = api
    note(f"events={json.dumps(events)}\nperiod={period} granularity={granularity} sector={sector} target={target}")
    asyncio.run(load(dsn, events))
    distinct = unique(events)
    subtree = {target, *REGISTRY.descendants(target)}
    start, end = period
    params: dict[str, Any] = {
        "unit": target,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "granularity": granularity,
    }
    if sector:
        params["sector"] = sector
    for definition in KPIS:  # every KPI's series for the drawn unit, sector and granularity
        series = client.get(f"/v1/kpis/{definition.id}/series", params=params)
        assert series.status_code == 200, series.text
        for point in series.json()["items"]:
            a, b = dt.datetime.fromisoformat(point["start"]), dt.datetime.fromisoformat(point["end"])
            scope = Scope(subtree, a, b, sector, NOW, population=population(target))
            expected = kpi_value(definition.id, distinct, scope)
            assert close(point["value"], expected), (definition.id, target, point, expected)
            assert (point["value"] is None) == (point["status"] == "no_data")

    ranking = client.get(
        f"/v1/kpis/{kpi}/ranking", params={"level": "district", "from": start.isoformat(), "to": end.isoformat()}
    )
    assert ranking.status_code == 200, ranking.text
    for row in ranking.json()["items"]:
        expected = kpi_value(
            kpi, distinct, Scope({row["unit"]}, start, end, None, NOW, population=population(row["unit"]))
        )
        assert close(row["value"], expected), (kpi, row, expected)

    # the drawn unit and period, and the whole province over the whole window (every event)
    whole = (WINDOW_START - dt.timedelta(days=1), WINDOW_START + dt.timedelta(days=40))
    for code, (a, b) in ((target, (start, end)), ("38", whole)):
        card = client.get(f"/v1/units/{code}/scorecard", params={"from": a.isoformat(), "to": b.isoformat()})
        assert card.status_code == 200, card.text
        units = {code, *REGISTRY.descendants(code)}
        for row in card.json()["items"]:
            if row["kpi"] in {k.id for k in KPIS}:
                scope = Scope(units, a, b, None, NOW, population=population(code))
                expected = kpi_value(row["kpi"], distinct, scope)
                assert close(row["value"], expected), (code, row, expected)
