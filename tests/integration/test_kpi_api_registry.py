"""Every endpoint answers every KPI of the registry - events-based, snapshot and
not-computable alike - with data or an explicit "no data", never a server error.

A real PostgreSQL holds a few days of simulated events (and projects); the KPI API runs
in-process with a fixed clock.
"""

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient

from infra.migrate import reference_registry, reference_units
from schemas.kpi import load_registry
from schemas.kpi_api import RankingPublic, ScorePublic
from services.aggregator.adapters.postgres import PgCounterStore
from services.simulator.generator import SectorSystems
from tests.support.api import operator_client
from tests.support.oracle import count_events
from tests.support.servers import Servers, fresh_database

pytestmark = pytest.mark.integration
REGISTRY = load_registry()
UNITS = reference_registry()
START = dt.datetime(2025, 5, 5, tzinfo=dt.UTC)
NOW = dt.datetime(2025, 5, 8, 3, tzinfo=dt.UTC)
PERIOD = {"from": "2025-05-05T00:00:00+07:00", "to": "2025-05-08T00:00:00+07:00"}
EMPTY = {"from": "2024-01-01T00:00:00+07:00", "to": "2024-01-08T00:00:00+07:00"}  # no event at all


@pytest.fixture(scope="module")
def client(servers: Servers) -> Iterator[TestClient]:
    dsn = asyncio.run(fresh_database(servers))

    async def prepare() -> None:
        # three weeks at a low rate, so that dossiers received in PERIOD are resolved too
        systems = SectorSystems(reference_units(), START, seed=7, events_per_hour=120)
        events = list(systems.until(START + dt.timedelta(days=21)))
        pool = await asyncpg.create_pool(dsn)
        try:
            await count_events(PgCounterStore(pool, "t"), events, UNITS, NOW.date())
        finally:
            await pool.close()

    asyncio.run(prepare())
    with operator_client(dsn, NOW) as api:
        yield api


def no_data_or_value(item: dict[str, Any]) -> None:
    assert (item["value"] is None) == (item["status"] == "no_data"), item


@pytest.mark.parametrize("kpi", [k.id for k in REGISTRY.kpis])
@pytest.mark.parametrize("period", [PERIOD, EMPTY], ids=["with-events", "empty"])
def test_series_and_ranking_answer_every_kpi(client: TestClient, kpi: str, period: dict[str, str]) -> None:
    definition = REGISTRY.get(kpi)
    assert definition is not None
    series = client.get(f"/v1/kpis/{kpi}/series", params={**period, "unit": "38", "granularity": "day"})
    assert series.status_code == 200, series.text
    body = series.json()
    assert len(body["items"]) == 3 if period is PERIOD else 7
    for point in body["items"]:
        no_data_or_value(point)
    if not definition.computable or definition.basis == "snapshot":
        assert all(p["value"] is None for p in body["items"]) and body["note"]
    ranking = client.get(f"/v1/kpis/{kpi}/ranking", params={**period, "level": "district"})
    assert ranking.status_code == 200, ranking.text
    rows = ranking.json()["items"]
    assert len(rows) in (26, 27)  # the district-level units of the period (Đông Sơn ended with 2024)
    for row in rows:
        no_data_or_value(row)
        assert (row["rank"] is None) == (row["value"] is None)
    if not definition.computable:
        assert ranking.json()["note"] and all(r["value"] is None for r in rows)


def test_the_kpis_events_can_compute_have_values_over_a_period_with_events(client: TestClient) -> None:
    # the registry-wide test above must not pass merely because everything is "no data"
    card = client.get("/v1/units/38/scorecard", params=PERIOD)
    assert card.status_code == 200
    values = {row["kpi"]: row["value"] for row in card.json()["items"]}
    assert set(values) == {k.id for k in REGISTRY.kpis}
    computable = [k for k in REGISTRY.kpis if k.computable and k.kind != "per_capita"]
    assert all(values[k.id] is not None for k in computable), {k.id for k in computable if values[k.id] is None}
    assert all(values[k.id] is None for k in REGISTRY.kpis if not k.computable)


@pytest.mark.parametrize("period", [PERIOD, EMPTY], ids=["with-events", "empty"])
def test_scorecards_of_every_unit_and_the_score_answer(client: TestClient, period: dict[str, str]) -> None:
    for code in ("38", "390", "395"):
        card = client.get(f"/v1/units/{code}/scorecard", params=period)
        assert card.status_code == 200, card.text
        for row in card.json()["items"]:
            no_data_or_value(row)
            if not REGISTRY.get(row["kpi"]).computable:  # type: ignore[union-attr]
                assert row["note"]
    score = client.get("/v1/score", params={**period, "level": "district"})
    assert score.status_code == 200, score.text
    ScorePublic.model_validate_json(score.content)  # rows are built without validation: the answer must still be valid
    ranking = client.get("/v1/kpis/dossier_on_time_rate/ranking", params={**period, "level": "district"})
    RankingPublic.model_validate_json(ranking.content)
    for row in score.json()["items"]:
        assert set(row["not_computable"]) == {k.id for k in REGISTRY.kpis if k.score and not k.computable}
