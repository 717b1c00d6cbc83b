"""Thanh Hóa across the 2025 reform, computed by hand from a handful of events: code reuse
(14758 is Phường Đông Thọ until 2025-06-30, Phường Hàm Rồng from 2025-07-01), a parent
change (Đông Sơn's commune Rừng Thông, 16378, under district 405 until 2024-12-31, then under
Thanh Hóa city 380), a split commune (Đông Thọ went partly into Hàm Rồng, partly into Hạc
Thành 14797), an event of a district's own agencies (380) - through the real aggregator
code into a real PostgreSQL and out of the KPI API.
"""

import asyncio
import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient

from infra.migrate import reference_registry
from services.aggregator.adapters.postgres import PgCounterStore
from services.runtime.auth import create_key
from tests.support.api import operator_client
from tests.support.oracle import count_events
from tests.support.servers import Servers, fresh_database

pytestmark = pytest.mark.integration
REGISTRY = reference_registry()
NOW = dt.datetime(2025, 9, 30, 3, tzinfo=dt.UTC)
KPI = "online_booking_rate"

# (unit, local day, bookings, of which online)
BOOKINGS: list[tuple[str, str, int, int]] = [
    ("16378", "2024-12-20", 2, 2),  # Rừng Thông under Đông Sơn (405)
    ("16378", "2025-02-10", 1, 0),  # Rừng Thông under Thanh Hóa city (380)
    ("14758", "2025-06-10", 4, 3),  # Đông Thọ (old 14758)
    ("14755", "2025-06-12", 2, 1),  # old Hàm Rồng, went wholly into the new Hàm Rồng
    ("380", "2025-06-15", 1, 1),  # the city's own agencies: in no commune
    ("14758", "2025-07-05", 5, 4),  # new Hàm Rồng
    ("14797", "2025-07-06", 2, 0),  # Hạc Thành
    ("16378", "2025-07-07", 3, 3),  # the new commune Đông Sơn (16378 again), formed wholly from old communes
]


def events() -> list[dict[str, Any]]:
    out = []
    for n, (unit, day, total, online) in enumerate(BOOKINGS):
        for i in range(total):
            out.append(
                {
                    "specversion": "1.0",
                    "id": f"b{n}-{i}",
                    "source": "/test/reform",
                    "type": "vn.gov.thanhhoa.health.appointment.booked",
                    "time": f"{day}T09:{i:02d}:00+07:00",
                    "unit": unit,
                    "data": {"channel": "online" if i < online else "counter"},
                }
            )
    return out


@pytest.fixture(scope="module")
def client(servers: Servers) -> Iterator[TestClient]:
    dsn = asyncio.run(fresh_database(servers))

    async def prepare() -> None:
        pool = await asyncpg.create_pool(dsn)
        try:
            await count_events(PgCounterStore(pool, "reform"), events(), REGISTRY, NOW.date())
        finally:
            await pool.close()

    asyncio.run(prepare())
    with operator_client(dsn, NOW) as api:
        yield api


def monthly(client: TestClient, unit: str, **params: str) -> dict[str, Any]:
    answer = client.get(
        f"/v1/kpis/{KPI}/series",
        params={"unit": unit, "granularity": "month", "from": "2025-05-01", "to": "2025-09-01", **params},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def points(body: dict[str, Any]) -> dict[str, tuple[float | None, float | None, str]]:
    return {p["start"][:7]: (p["value"], p["denominator"], p["basis"]) for p in body["items"]}


def test_a_reused_code_before_the_reform_is_the_old_commune(client: TestClient) -> None:
    body = monthly(client, "14758", as_of="2025-06-30", history="observed")
    assert (body["unit_name"], body["unit_valid_to"]) == ("Đông Thọ", "2025-06-30")
    assert points(body)["2025-06"] == (75.0, 4, "observed")
    assert points(body)["2025-07"] == (None, 0, "none")  # Đông Thọ no longer exists
    assert body["reforms"] == ["2025-07-01"]


def test_the_new_commune_observed_has_no_history_before_it_began(client: TestClient) -> None:
    body = monthly(client, "14758", history="observed")
    assert (body["unit_name"], body["unit_valid_from"]) == ("Hàm Rồng", "2025-07-01")
    assert points(body)["2025-06"] == (None, 0, "none")
    assert points(body)["2025-07"] == (80.0, 5, "observed")


def test_the_new_commune_restated_sums_its_predecessors_and_says_it_is_approximate(client: TestClient) -> None:
    found = points(monthly(client, "14758"))  # history=restated is the default
    # June: old Hàm Rồng (2 bookings, 1 online) whole + half of Đông Thọ (4, 3 online), split in two
    assert found["2025-06"] == (100 * (1 + 1.5) / (2 + 2), 4.0, "restated_approximate")
    assert found["2025-07"] == (80.0, 5, "observed")
    assert found["2025-05"][2] == "restated_approximate"  # no bookings, still a restated point


def test_a_commune_formed_from_whole_communes_is_restated_exactly(client: TestClient) -> None:
    found = points(monthly(client, "16378", **{"from": "2024-12-01"}))
    assert found["2024-12"] == (100.0, 2, "restated_exact")  # Rừng Thông under Đông Sơn
    assert found["2025-02"] == (0.0, 1, "restated_exact")  # Rừng Thông under the city
    assert found["2025-07"] == (100.0, 3, "observed")


def test_a_parent_change_rolls_up_along_the_parent_of_the_day(client: TestClient) -> None:
    period = {"from": "2024-12-01", "to": "2025-03-01"}
    dong_son = monthly(client, "405", history="observed", **period)
    assert points(dong_son)["2024-12"] == (100.0, 2, "observed")
    city_observed = points(monthly(client, "380", history="observed", **period))
    assert city_observed["2024-12"] == (None, 0, "observed") and city_observed["2025-02"] == (0.0, 1, "observed")
    city = points(monthly(client, "380", **period))  # restated: with Đông Sơn before it joined the city
    assert city["2024-12"] == (100.0, 2, "restated_exact")


def denominators(client: TestClient, level: str, as_of: str, history: str = "restated") -> float:
    answer = client.get(
        f"/v1/kpis/{KPI}/ranking",
        params={"level": level, "from": "2025-06-01", "to": "2025-07-01", "as_of": as_of, "history": history},
    )
    assert answer.status_code == 200, answer.text
    return float(sum(row["denominator"] or 0 for row in answer.json()["items"]))


def test_the_province_total_is_the_same_whichever_way_it_is_summed(client: TestClient) -> None:
    province = points(monthly(client, "38"))["2025-06"][1]
    assert province == 7  # 4 + 2 + the city's own 1
    city_own = 1
    assert denominators(client, "district", "2025-06-30") == province
    assert denominators(client, "commune", "2025-06-30") + city_own == province  # the 548 old communes
    assert denominators(client, "commune", "2025-07-31") + city_own == province  # the 166, restated
    assert denominators(client, "former_district", "2025-07-31") == province


def test_rankings_across_the_reform_say_how_they_treat_it(client: TestClient) -> None:
    answer = client.get(
        f"/v1/kpis/{KPI}/ranking", params={"level": "commune", "from": "2025-06-01", "to": "2025-08-01"}
    )
    body = answer.json()
    assert (body["as_of"], body["history"], body["reforms"]) == ("2025-07-31", "restated", ["2025-07-01"])
    rows = {row["unit"]: row for row in body["items"]}
    assert len(rows) == 166
    assert rows["14758"]["basis"] == "restated_approximate" and rows["14758"]["unit_name"] == "Hàm Rồng"
    assert rows["16378"]["basis"] == "restated_exact"
    assert rows["14758"]["denominator"] == 4 + 5
    csv = client.get(
        f"/v1/kpis/{KPI}/ranking",
        params={"level": "commune", "from": "2025-06-01", "to": "2025-08-01", "format": "csv"},
    ).text
    header = csv.splitlines()[0].split(",")
    assert {"as_of", "history", "reforms", "basis", "unit_key"} <= set(header)
    assert "2025-07-31,restated,2025-07-01," in csv and ",14758,14758@2025-07-01,Hàm Rồng," in csv
    series = client.get(f"/v1/kpis/{KPI}/series", params={"unit": "14758", "from": "2025-06-01", "format": "csv"})
    assert "restated_approximate" in series.text and "restated,2025-07-01" in series.text


# -- operator scopes across the reform (docs/units.md, services/core/scopes.py) ---------------


def key_issued(scope: str, on: dt.date) -> str:
    """An operator key for ``scope`` as if issued on ``on`` (which unit the code denoted)."""

    async def make() -> str:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            issued = await create_key(conn, kind="operator", label=f"scope {scope} {on}", scope_unit=scope)
            noon = dt.datetime.combine(on, dt.time(12), tzinfo=dt.timezone(dt.timedelta(hours=7)))
            await conn.execute("UPDATE api_keys SET created_at = $2 WHERE key_id = $1", issued.principal.key_id, noon)
            return issued.key
        finally:
            await conn.close()

    return asyncio.run(make())


def reads(client: TestClient, key: str, unit: str, as_of: str | None = None) -> int:
    params = {"unit": unit, "granularity": "month", "from": "2025-05-01", "to": "2025-09-01"}
    answer = client.get(
        f"/v1/kpis/{KPI}/series",
        params={**params, **({"as_of": as_of} if as_of else {})},
        headers={"authorization": f"Bearer {key}"},
    )
    return answer.status_code


def test_a_former_district_key_reads_its_history_and_the_communes_formed_mostly_from_it(client: TestClient) -> None:
    from services.core.history import formed_from

    tho_xuan = REGISTRY.get("395", dt.date(2024, 1, 1))
    assert tho_xuan is not None
    key = key_issued("395", dt.date(2024, 1, 1))
    heirs = formed_from(REGISTRY, tho_xuan)
    assert heirs and all(u.valid_from == dt.date(2025, 7, 1) for u in heirs)
    assert reads(client, key, "395") == 200
    assert [reads(client, key, u.code) for u in heirs] == [200] * len(heirs)
    assert reads(client, key, "14758") == 403  # Hàm Rồng: formed from Thanh Hóa city
    assert reads(client, key, "38") == 403


def test_a_new_commune_key_reads_its_predecessors_but_not_its_neighbours(client: TestClient) -> None:
    key = key_issued("14758", dt.date(2025, 8, 1))  # Hàm Rồng
    assert reads(client, key, "14758") == 200
    assert reads(client, key, "14755", as_of="2025-06-30") == 200  # old Hàm Rồng, went wholly into it
    assert reads(client, key, "14758", as_of="2025-06-30") == 200  # Đông Thọ, partly
    assert reads(client, key, "14797") == 403  # Hạc Thành, the neighbour that took the rest of Đông Thọ
    assert reads(client, key, "380", as_of="2025-06-30") == 403  # the old city as a whole


def test_an_old_commune_key_reads_what_its_commune_became(client: TestClient) -> None:
    key = key_issued("14758", dt.date(2024, 1, 1))  # Đông Thọ
    assert reads(client, key, "14758", as_of="2025-06-30") == 200
    assert reads(client, key, "14758") == 200 and reads(client, key, "14797") == 200  # its two successors
    assert reads(client, key, "16378") == 403


def test_a_month_compared_with_the_month_before_a_reform_says_it_crosses_it(client: TestClient) -> None:
    answer = client.get(
        f"/v1/kpis/{KPI}/ranking", params={"level": "commune", "from": "2025-07-01", "to": "2025-08-01"}
    )
    body = answer.json()
    assert (body["previous_from"][:10], body["reforms"]) == ("2025-06-01", ["2025-07-01"])
    rows = {row["unit"]: row for row in body["items"]}
    assert (rows["14758"]["basis"], rows["14758"]["previous_basis"]) == ("observed", "restated_approximate")
    series = client.get(f"/v1/kpis/{KPI}/series", params={"unit": "14758", "from": "2025-07-01", "to": "2025-08-01"})
    assert series.json()["reforms"] == []  # the month alone does not cross it
