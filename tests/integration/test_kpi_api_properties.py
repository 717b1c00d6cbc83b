"""Property: for random event sets, every KPI the API serves equals the catalogue formula
applied directly to the events (tests/support/naive_kpis.py), for random units, levels,
periods, sectors and granularities.

Events are decoded and committed by the aggregator's own store (real PostgreSQL, same SQL
as production); the KPI API runs in-process with a fixed clock so "now" is known.
"""

import asyncio
import datetime as dt
import json
import math
import os
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from infra.migrate import reference_units
from schemas.kpi import load_registry
from services.aggregator.adapters.postgres import PgCounterStore
from services.core.calendar import VN
from services.core.units import UnitRegistry
from services.kpi_api.app import create_app
from services.runtime.auth import create_key
from services.runtime.clock import FixedClock
from tests.support.naive_kpis import Scope, kpi_value, unique
from tests.support.oracle import count_events

pytestmark = pytest.mark.integration

REGISTRY = UnitRegistry.from_units(reference_units())
KPIS = [k for k in load_registry().kpis if k.computable and k.basis == "events"]
UNITS = ["390", "392", "395", "400", "404", "380"]  # districts the events use
WINDOW_START = dt.datetime(2025, 5, 1, tzinfo=VN)
NOW = WINDOW_START + dt.timedelta(days=12, hours=3)
SECTORS = ["education", "health", "transport", "culture"]
# SMARTCITY_PROPERTY_EXAMPLES=2000 explores far more inputs when hunting discrepancies
EXAMPLES = int(os.environ.get("SMARTCITY_PROPERTY_EXAMPLES", 40 if os.environ.get("SMARTCITY_FULL") == "1" else 15))


def iso(minutes: int) -> str:
    return (WINDOW_START + dt.timedelta(minutes=minutes)).isoformat()


ids = st.integers(0, 10**9).map(str)
doc_ids = st.integers(0, 12).map(lambda n: f"VB{n}")  # few: documents are reported again and revoked
minute = st.integers(0, 14 * 24 * 60)
unit = st.sampled_from(UNITS)
channel = st.sampled_from(["online", "app", "counter", "phone", "post"])
payment = st.sampled_from(["cash", "card", "qr", "transfer", "app"])

STATELESS: dict[str, tuple[str, st.SearchStrategy[dict[str, Any]]]] = {
    "document.incoming_registered": (
        "any",
        st.fixed_dictionaries(
            {"document_id": doc_ids, "received_electronically": st.booleans(), "processed_on_system": st.booleans()}
        ),
    ),
    "document.outgoing_issued": (
        "any",
        st.fixed_dictionaries(
            {"document_id": doc_ids, "agency_signed": st.booleans(), "personal_signed": st.booleans()}
        ),
    ),
    "document.revoked": ("any", st.fixed_dictionaries({"document_id": doc_ids})),
    "enrolment.applied": ("education", st.fixed_dictionaries({"channel": channel, "level": st.just("primary")})),
    "elearning.session_completed": (
        "education",
        st.fixed_dictionaries({"minutes": st.integers(1, 900).map(lambda m: m / 10)}),
    ),
    "fee.paid": ("education", st.fixed_dictionaries({"method": payment})),
    "appointment.booked": ("health", st.fixed_dictionaries({"channel": channel})),
    "visit.checked_in": (
        "health",
        st.fixed_dictionaries(
            {"insured": st.booleans(), "id_method": st.sampled_from(["chip_id", "vneid", "insurance_card", "paper"])}
        ),
    ),
    "visit.closed": ("health", st.fixed_dictionaries({"emr": st.booleans()})),
    "telemedicine.consulted": ("health", st.fixed_dictionaries({"minutes": st.just(10.0)})),
    "fare.tapped": ("transport", st.fixed_dictionaries({"route_id": st.just("R1"), "payment": payment})),
    "vehicle.departed": (
        "transport",
        st.fixed_dictionaries({"route_id": st.just("R1"), "delay_seconds": st.integers(-120, 900)}),
    ),
    "parking.session_closed": ("transport", st.fixed_dictionaries({"minutes": st.just(30.0), "payment": payment})),
    "ticket.sold": (
        "culture",
        st.fixed_dictionaries({"site_id": st.just("S1"), "channel": channel, "quantity": st.integers(1, 4)}),
    ),
    "entry.scanned": ("culture", st.fixed_dictionaries({"site_id": st.just("S1"), "count": st.integers(1, 3)})),
    "library.loan_recorded": (
        "culture",
        st.fixed_dictionaries({"format": st.sampled_from(["physical", "electronic"])}),
    ),
}


def envelope(sector: str, entity_verb: str, unit_code: str, at: int, data: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e{n}",
        "source": f"/test/{sector}/{unit_code}",
        "type": f"vn.gov.thanhhoa.{sector}.{entity_verb}",
        "time": iso(at),
        "unit": unit_code,
        "data": data,
    }


@st.composite
def stateless_event(draw: st.DrawFn) -> list[tuple[str, str, str, int, dict[str, Any]]]:
    kind = draw(st.sampled_from(sorted(STATELESS)))
    owner, data = STATELESS[kind][0], draw(STATELESS[kind][1])
    sector = draw(st.sampled_from(SECTORS)) if owner == "any" else owner
    return [(sector, kind, draw(unit), draw(minute), data)]


@st.composite
def dossier_life(draw: st.DrawFn) -> list[tuple[str, str, str, int, dict[str, Any]]]:
    sector, code, t0 = draw(st.sampled_from(SECTORS)), draw(unit), draw(minute)
    did = f"D{draw(ids)}"
    due_days = draw(st.integers(0, 10))  # 0: the procedure has no due time
    steps = [
        (
            sector,
            "dossier.received",
            code,
            t0,
            {
                "dossier_id": did,
                "procedure_code": "1.001",
                "channel": draw(st.sampled_from(["online", "counter", "post"])),
                "due_at": iso(t0 + due_days * 1440) if due_days else None,
                "fee_required": draw(st.booleans()),
                "digitised": draw(st.booleans()),
                "reused_data": draw(st.booleans()),
            },
        )
    ]
    t = t0
    for _ in range(draw(st.integers(0, 2))):
        t += draw(st.integers(10, 3000))
        steps.append((sector, "dossier.supplement_requested", code, t, {"dossier_id": did}))
        if draw(st.booleans()):
            t += draw(st.integers(10, 5000))
            steps.append((sector, "dossier.supplement_resumed", code, t, {"dossier_id": did}))
    ending = draw(st.sampled_from(["open", "resolved", "resolved", "withdrawn"]))
    if ending == "withdrawn":
        reason = draw(st.sampled_from(["withdrawn", "stopped"]))
        steps.append((sector, "dossier.withdrawn", code, t + 60, {"dossier_id": did, "reason": reason}))
    if ending == "resolved":
        t += draw(st.integers(1, 15 * 1440))
        steps.append((sector, "dossier.resolved", code, t, {"dossier_id": did, "e_result": draw(st.booleans())}))
        if draw(st.booleans()):
            steps.append((sector, "dossier.rated", code, t + 30, {"dossier_id": did, "satisfied": draw(st.booleans())}))
    if draw(st.booleans()):
        steps.append((sector, "dossier.paid", code, t0 + 5, {"dossier_id": did, "online": draw(st.booleans())}))
    return steps


@st.composite
def event_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    groups = draw(st.lists(st.one_of(stateless_event(), dossier_life()), min_size=1, max_size=40))
    events = []
    for n, (sector, kind, code, at, data) in enumerate(step for group in groups for step in group):
        events.append(envelope(sector, kind, code, at, data, n))
    # duplicate deliveries of some events, later in the stream
    for index in draw(st.lists(st.integers(0, len(events) - 1), max_size=5)):
        events.append(dict(events[index]))
    return events


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
    os.environ["DATABASE_URL"] = dsn
    os.environ["KPI_API_RATE_LIMIT_PER_S"] = "1000000"  # the test asks fast; limits are tested elsewhere
    os.environ["KPI_API_RATE_LIMIT_BURST"] = "1000000"

    async def key() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return (await create_key(conn, kind="operator", label="prop", scope_unit="38")).key
        finally:
            await conn.close()

    token = asyncio.run(key())
    with TestClient(create_app(clock=FixedClock(NOW.astimezone(dt.UTC)))) as client:
        client.headers["authorization"] = f"Bearer {token}"
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
    events=event_sets(),
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
            scope = Scope(
                subtree, dt.datetime.fromisoformat(point["start"]), dt.datetime.fromisoformat(point["end"]), sector, NOW
            )
            expected = kpi_value(definition.id, distinct, scope)
            assert close(point["value"], expected), (definition.id, target, point, expected)
            assert (point["value"] is None) == (point["status"] == "no_data")

    ranking = client.get(
        f"/v1/kpis/{kpi}/ranking", params={"level": "district", "from": start.isoformat(), "to": end.isoformat()}
    )
    assert ranking.status_code == 200, ranking.text
    for row in ranking.json()["items"]:
        expected = kpi_value(kpi, distinct, Scope({row["unit"]}, start, end, None, NOW))
        assert close(row["value"], expected), (kpi, row, expected)

    # the drawn unit and period, and the whole province over the whole window (every event)
    whole = (WINDOW_START - dt.timedelta(days=1), WINDOW_START + dt.timedelta(days=40))
    for code, (a, b) in ((target, (start, end)), ("38", whole)):
        card = client.get(f"/v1/units/{code}/scorecard", params={"from": a.isoformat(), "to": b.isoformat()})
        assert card.status_code == 200, card.text
        units = {code, *REGISTRY.descendants(code)}
        for row in card.json()["items"]:
            if row["kpi"] in {k.id for k in KPIS}:
                expected = kpi_value(row["kpi"], distinct, Scope(units, a, b, None, NOW))
                assert close(row["value"], expected), (code, row, expected)
