"""Who may read what from the KPI API, and its HTTP conventions (CSV, ETag, cursors,
problem details) - against a real PostgreSQL holding real aggregated events."""

import asyncio
import csv
import datetime as dt
import io
import os
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient

from infra.migrate import reference_registry, reference_units
from services.aggregator.adapters.postgres import PgCounterStore
from services.core.history import formed_from
from services.kpi_api.app import create_app
from services.runtime.auth import create_key, revoke_key
from services.runtime.clock import FixedClock
from services.simulator.generator import SectorSystems
from tests.support.oracle import count_events
from tests.support.servers import Servers, fresh_database
from tests.support.waiting import eventually_sync

pytestmark = pytest.mark.integration
REGISTRY = reference_registry()
START = dt.datetime(2025, 5, 5, tzinfo=dt.UTC)
PERIOD = {"from": "2025-05-05T00:00:00+07:00", "to": "2025-05-08T00:00:00+07:00"}


async def _prepare(dsn: str) -> dict[str, str]:
    events = SectorSystems(reference_units(), START, seed=41, events_per_hour=3000).take(30_000)
    pool = await asyncpg.create_pool(dsn)
    try:
        await count_events(PgCounterStore(pool, "t"), events, REGISTRY, dt.date(2025, 5, 8))
        async with pool.acquire() as conn:
            keys = {
                "province": (await create_key(conn, kind="operator", label="province", scope_unit="38")).key,
                "tho_xuan": (await create_key(conn, kind="operator", label="Thọ Xuân", scope_unit="395")).key,
                "ingest": (await create_key(conn, kind="ingest", label="his", sector="health")).key,
            }
            revoked = await create_key(conn, kind="operator", label="old", scope_unit="38")
            await revoke_key(conn, revoked.principal.key_id)
            keys["revoked"] = revoked.key
            return keys
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def api(servers: Servers) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    dsn = asyncio.run(fresh_database(servers))
    keys = asyncio.run(_prepare(dsn))
    os.environ["DATABASE_URL"] = dsn
    with TestClient(create_app(clock=FixedClock(dt.datetime(2025, 5, 8, 3, tzinfo=dt.UTC)))) as client:
        yield client, keys, dsn


def get(client: TestClient, key: str | None, url: str, **params: Any) -> Any:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return client.get(url, params=params, headers=headers)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_credentials_are_required_and_checked(api: Any) -> None:
    client, keys, _ = api
    assert_problem(get(client, None, "/v1/kpis"), 401)
    assert_problem(get(client, "sck_nothere_xyz", "/v1/kpis"), 401)
    assert_problem(get(client, "not-even-shaped", "/v1/kpis"), 401)
    assert_problem(get(client, keys["revoked"], "/v1/kpis"), 401)
    assert "ingest" in assert_problem(get(client, keys["ingest"], "/v1/kpis"), 403)["detail"]
    assert get(client, keys["province"], "/v1/kpis").status_code == 200
    assert get(client, None, "/v1/kpis").headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "url",
    [
        "/v1/units/390/scorecard",
        "/v1/units/38/scorecard",
        "/v1/kpis/ridership/series?unit=38",
        "/v1/kpis/ridership/series?unit=392",
        "/v1/dossiers/overdue?unit=400",
        "/v1/projects?unit=38",
    ],
)
def test_a_unit_scoped_operator_gets_403_outside_its_subtree(api: Any, url: str) -> None:
    client, keys, _ = api
    body = assert_problem(client.get(url, headers={"authorization": f"Bearer {keys['tho_xuan']}"}), 403)
    assert "395" in body["detail"]


def test_a_unit_scoped_operator_reads_its_own_unit(api: Any) -> None:
    client, keys, _ = api
    assert get(client, keys["tho_xuan"], "/v1/units/395/scorecard", **PERIOD).status_code == 200
    assert get(client, keys["tho_xuan"], "/v1/kpis/ridership/series", unit="395", **PERIOD).status_code == 200
    units = get(client, keys["tho_xuan"], "/v1/units", as_of="2025-05-08").json()["items"]
    communes = {u.code for u in REGISTRY.at_level(3, dt.date(2025, 5, 8), within="395")}
    assert units[0]["code"] == "395" and {u["code"] for u in units[1:]} == communes
    today = get(client, keys["tho_xuan"], "/v1/units", as_of="2026-01-01").json()["items"]
    assert {u["code"] for u in today} == {u.code for u in formed_from(REGISTRY, REGISTRY.get("395"))}


def test_rankings_and_scores_show_a_scoped_operator_only_its_row_with_the_provincial_rank(api: Any) -> None:
    client, keys, _ = api
    for url in ("/v1/kpis/incoming_electronic_rate/ranking", "/v1/score"):
        everyone = get(client, keys["province"], url, level="district", **PERIOD).json()["items"]
        mine = get(client, keys["tho_xuan"], url, level="district", **PERIOD).json()["items"]
        assert len(everyone) >= 26
        assert [row["unit"] for row in mine] == ["395"]
        assert mine[0] == next(row for row in everyone if row["unit"] == "395")  # same rank, same numbers


def test_operator_access_is_audited(api: Any) -> None:
    client, keys, dsn = api
    assert get(client, keys["tho_xuan"], "/v1/units/395/scorecard").status_code == 200
    assert_problem(get(client, keys["tho_xuan"], "/v1/units/390/scorecard"), 403)

    async def rows() -> list[tuple[str, int]]:
        conn = await asyncpg.connect(dsn)
        try:
            found = await conn.fetch(
                "SELECT detail->>'path' AS path, (detail->>'status')::int AS status FROM audit_log "
                "WHERE action = 'operator.access' AND detail->>'label' = 'Thọ Xuân'"
            )
            return [(r["path"], r["status"]) for r in found]
        finally:
            await conn.close()

    audited = eventually_sync(
        lambda: asyncio.run(rows()),
        lambda found: {("/v1/units/395/scorecard", 200), ("/v1/units/390/scorecard", 403)} <= set(found),
        timeout_s=10,
        what="access rows in audit_log",
    )
    assert audited


def test_csv_etag_and_304(api: Any) -> None:
    client, keys, _ = api
    headers = {"authorization": f"Bearer {keys['province']}", "accept": "text/csv"}
    answer = client.get(
        "/v1/kpis/online_submission_rate/ranking", params={"level": "district", **PERIOD}, headers=headers
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    as_json = get(client, keys["province"], "/v1/kpis/online_submission_rate/ranking", level="district", **PERIOD)
    assert [r["unit"] for r in rows] == [r["unit"] for r in as_json.json()["items"]]
    etag = answer.headers["etag"]
    again = client.get(
        "/v1/kpis/online_submission_rate/ranking",
        params={"level": "district", **PERIOD},
        headers={**headers, "if-none-match": etag},
    )
    assert again.status_code == 304 and not again.content
    assert as_json.headers["etag"] != etag  # JSON and CSV are different representations


def test_cursor_paging_returns_every_row_once(api: Any) -> None:
    client, keys, _ = api
    full = get(client, keys["province"], "/v1/score", level="district", **PERIOD).json()["items"]
    seen, cursor = [], None
    while True:
        params = {"level": "district", "limit": 5, **PERIOD, **({"cursor": cursor} if cursor else {})}
        page = get(client, keys["province"], "/v1/score", **params)
        body = page.json()
        seen += [row["unit"] for row in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in page.headers
            break
        assert 'rel="next"' in page.headers["link"]
    assert seen == [row["unit"] for row in full]
    assert_problem(get(client, keys["province"], "/v1/score", cursor="%%%"), 422)


def test_errors_are_problem_documents(api: Any) -> None:
    client, keys, _ = api
    assert_problem(get(client, keys["province"], "/v1/kpis/nope/series"), 404)
    assert_problem(get(client, keys["province"], "/v1/units/999/scorecard"), 404)
    body = assert_problem(get(client, keys["province"], "/v1/kpis/ridership/series", granularity="fortnight"), 422)
    assert body["errors"][0]["field"].endswith("granularity")
    assert_problem(
        get(client, keys["province"], "/v1/kpis/ridership/series", **{"from": "2025-05-09", "to": "2025-05-01"}), 422
    )
    snapshot = get(client, keys["province"], "/v1/kpis/project_on_schedule_rate/series")  # no history: said, not 422
    assert snapshot.status_code == 200 and snapshot.json()["note"]
    assert all(p["value"] is None for p in snapshot.json()["items"])


def test_dashboard_is_served_with_security_headers(api: Any) -> None:
    client, _, _ = api
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
