"""A unit file loaded into a running stack: an event for a unit that exists only in the new
file is accepted by ingest and counted by the aggregator - no restart, nothing dead-lettered.

Real processes (the health service and the aggregator), the real broker and PostgreSQL, and
the operators' CLI (``smartcity units load``) to load the file.
"""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.runtime.auth import create_key
from services.runtime.units import RegistryCache, read_files, store_units
from tests.support.kafka import new_prefix, provision
from tests.support.procs import ROOT, ServiceProcess, service_env
from tests.support.servers import Servers, fresh_database
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
NEW_UNIT = "99001"
UNIT_FILE = f"""code,name,full_name,kind,parent_code,valid_from,valid_to
{NEW_UNIT},Thử Nghiệm,Xã Thử Nghiệm,commune,38,2026-01-01,
"""


def booking(id_: str) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": id_,
        "source": "/test/reload",
        "type": "vn.gov.thanhhoa.health.appointment.booked",
        "time": "2026-02-02T09:00:00+07:00",
        "unit": NEW_UNIT,
        "data": {"channel": "online"},
    }


async def counted(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT coalesce(sum(value), 0) FROM counters_monthly "
            "WHERE unit_code = $1 AND metric = 'appointment.booked'",
            NEW_UNIT,
        )
        return int(value)
    finally:
        await conn.close()


async def metric(service: ServiceProcess, name: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{service.url}/metrics")).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


async def test_a_unit_loaded_while_the_stack_runs_is_accepted_and_counted(servers: Servers, workdir: Path) -> None:
    dsn = await fresh_database(servers)
    prefix = new_prefix()
    await asyncio.to_thread(provision, servers.bootstrap, prefix)
    conn = await asyncpg.connect(dsn)
    try:
        key = (await create_key(conn, kind="ingest", label="his", sector="health")).key
    finally:
        await conn.close()
    env = service_env(servers.bootstrap, dsn, prefix, LOG_JSON="false", AGGREGATOR_GROUP_ID=f"{prefix}agg")
    health = ServiceProcess("services.health", env, "HEALTH_PORT", workdir)
    aggregator = ServiceProcess("services.aggregator", env, "AGGREGATOR_PORT", workdir)
    for process in (health, aggregator):
        process.start(wait_ready=False)
        await asyncio.to_thread(process.wait_ready)
    try:
        async with httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {key}"}) as client:
            url = f"{health.url}/v1/events"
            before = await client.post(
                url, json=booking("r-1"), headers={"content-type": "application/cloudevents+json"}
            )
            assert before.status_code == 422 and before.json()["errors"][0]["code"] == "unknown_unit"

            path = workdir / "new_units.csv"
            path.write_text(UNIT_FILE, encoding="utf-8")
            cli = [sys.executable, "-m", "infra.cli", "units", "load", str(path)]
            env = {**os.environ, "DATABASE_URL": dsn}
            done = await asyncio.to_thread(subprocess.run, cli, env=env, cwd=ROOT, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            assert "rows: 1" in done.stdout

            after = await client.post(
                url, json=booking("r-2"), headers={"content-type": "application/cloudevents+json"}
            )
            assert after.status_code == 202, after.text
        assert await eventually(lambda: counted(dsn), lambda n: n == 1, timeout_s=60, what="the booking counted") == 1
        assert await metric(aggregator, "aggregator_dead_letters_total") == 0
        assert health.proc is not None and health.proc.poll() is None  # no restart of either
        assert aggregator.proc is not None and aggregator.proc.poll() is None
    finally:
        health.stop()
        aggregator.stop()


async def test_a_check_that_began_before_a_load_never_answers_for_a_request_after_it(
    servers: Servers, workdir: Path
) -> None:
    """The race CI found: the background poll checks the version, a unit file is loaded, a
    request naming the new unit arrives - it must not be answered from the earlier check."""
    dsn = await fresh_database(servers)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    cache = RegistryCache(pool, poll_s=3600)
    try:
        await cache.start()  # the "background" check, just before the load
        assert cache.registry is not None and NEW_UNIT not in cache.registry
        path = workdir / "units_race.csv"
        path.write_text(UNIT_FILE, encoding="utf-8")
        async with pool.acquire() as conn:
            await store_units(conn, read_files([path]))
        arrived = time.monotonic()

        assert await cache.refresh(seen_after=arrived) is True
        assert NEW_UNIT in cache.registry
        loaded = cache.registry
        # A second caller that arrived before that check began is answered by it, unchanged.
        assert await cache.refresh(seen_after=arrived) is False
        assert cache.registry is loaded
    finally:
        await cache.stop()
        await pool.close()
