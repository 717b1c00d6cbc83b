"""Rules that run both in Python and in SQL agree (services/core/kpis/dossiers.py): "open"
(``OPEN_SQL`` / ``DossierState.is_open``) and "overdue now" (``OVERDUE_SQL`` /
``DossierState.overdue_at``), for random dossier states and times, in a real PostgreSQL.

And the entity tables the migrations create hold exactly the columns of the core's state
dataclasses (services/readmodels/tables.py), which the aggregator writes and the API reads.
"""

import asyncio
import datetime as dt
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.kpis.dossiers import OPEN_SQL, DossierState, overdue_sql
from services.readmodels.tables import DOSSIERS, ENTITY_TABLES

pytestmark = pytest.mark.integration
T0 = dt.datetime(2025, 6, 20, 1, tzinfo=dt.UTC)
instants = st.integers(-5 * 86400, 40 * 86400).map(lambda s: T0 + dt.timedelta(seconds=s))
maybe = st.one_of(st.none(), instants)


@st.composite
def states(draw: st.DrawFn, n: int) -> DossierState:
    return DossierState(
        dossier_id=f"D{n}",
        sector="general",
        unit_code="14758",
        received_at=draw(maybe),
        due_at=draw(maybe),
        supplement_count=draw(st.integers(0, 3)),
        paused_seconds=draw(st.integers(0, 10 * 86400)),
        pause_started_at=draw(maybe),
        resolved_at=draw(st.one_of(st.none(), st.none(), instants)),
        withdrawn_at=draw(st.one_of(st.none(), st.none(), instants)),
    )


@pytest.fixture(scope="module")
def pool(servers: Any) -> Any:
    from tests.support.servers import fresh_database

    dsn = asyncio.run(fresh_database(servers))
    return dsn


async def _compare(dsn: str, rows: list[DossierState], now: dt.datetime) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM dossiers")
            columns = DOSSIERS.names
            params = ", ".join(f"${i + 1}" for i in range(len(columns)))
            await conn.executemany(
                f"INSERT INTO dossiers ({', '.join(columns)}) VALUES ({params})",
                [[getattr(r, c) for c in columns] for r in rows],
            )
            found = await conn.fetch(
                f"SELECT d.dossier_id, {OPEN_SQL} AS open, ({OPEN_SQL} AND {overdue_sql('$1')}) AS overdue "
                "FROM dossiers d",
                now,
            )
    finally:
        await conn.close()
    by_id = {r.dossier_id: r for r in rows}
    wrong = []
    for row in found:
        state = by_id[row["dossier_id"]]
        if (bool(row["open"]), bool(row["overdue"])) != (state.is_open, state.overdue_at(now)):
            wrong.append(f"{state} at {now}: SQL open={row['open']} overdue={row['overdue']}")
    return wrong


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), now=instants)
def test_open_and_overdue_in_sql_agree_with_python(pool: str, data: st.DataObject, now: dt.datetime) -> None:
    rows = [data.draw(states(n)) for n in range(data.draw(st.integers(1, 25)))]
    assert asyncio.run(_compare(pool, rows, now)) == []


def test_the_twins_can_disagree_detectably(pool: str) -> None:
    # the comparison itself can fail: a state Python calls overdue is found overdue by SQL
    late = DossierState("D1", "general", "14758", received_at=T0, due_at=T0 + dt.timedelta(days=1))
    assert late.overdue_at(T0 + dt.timedelta(days=2))
    assert asyncio.run(_compare(pool, [late], T0 + dt.timedelta(days=2))) == []
    assert not late.overdue_at(T0)
    assert asyncio.run(_compare(pool, [late], T0)) == []


def test_entity_tables_have_the_columns_of_the_core_states(pool: str) -> None:
    async def columns() -> dict[str, list[str]]:
        conn = await asyncpg.connect(pool)
        try:
            rows = await conn.fetch(
                """SELECT table_name, column_name FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = ANY($1::text[])
                   ORDER BY ordinal_position""",
                list(ENTITY_TABLES),
            )
        finally:
            await conn.close()
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r["table_name"], []).append(r["column_name"])
        return out

    found = asyncio.run(columns())
    for name, table in ENTITY_TABLES.items():
        assert set(found[name]) - {"updated_at"} == set(table.names), name
