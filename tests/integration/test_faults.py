"""Fault suite: the whole ingestion → Kafka → aggregator → PostgreSQL path under broker,
controller, database and process failures, on a real 3-broker Apache Kafka cluster
(replication factor 3, min.insync.replicas 2).

Each scenario runs its own topics, database, consumer group and service processes (the four
sector services and one or two aggregators, bootstrap = all three brokers) on the module's
cluster and PostgreSQL server. A load driver sends the simulator's events, plus a few
deliberately invalid ones, through the four services over HTTP while the fault happens, and
retries every event answered 503 (or cut off) with the same id until it is accepted.
Afterwards (``tests.support.faults.settle_and_verify``): every accepted event is in Kafka and
counted exactly once, nothing rejected is counted, nothing answered 503 is lost.

Scenarios: (a) a broker SIGKILLed and restarted; (b) the active controller SIGKILLed and
restarted; (c) a broker SIGSTOPped for 15 s; (d) PostgreSQL SIGKILLed and restarted on the
same data directory and port; (e) a sector service and an aggregator SIGKILLed and
restarted; (f) two brokers SIGKILLed (min ISR 2 cannot be met): the services answer 503,
never 202, until they are back.

``make test`` runs (a) with few events; ``SMARTCITY_FULL=1`` (``.ci/run``) runs all of them.
"""

import asyncio
import json
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from infra.apache_kafka.launcher import KafkaCluster
from infra.embedded import EmbeddedPostgres
from tests.support.faults import (
    LoadDriver,
    Rig,
    controller_of,
    heal_cluster,
    other_node,
    settle_and_verify,
    start_cluster,
    start_postgres,
    wait_node_ready,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.faults]

FULL = os.environ.get("SMARTCITY_FULL") == "1"
RATE = 500.0  # new events per second, over the four services
PHASE = 3000 if FULL else 1500  # events accepted before, during and after a fault
PAUSE_S = 15.0
full_only = pytest.mark.full  # long fault scenarios: SMARTCITY_FULL=1 (.ci/run) only


@pytest.fixture(scope="module")
def faulty(workdir: Path) -> Iterator[tuple[KafkaCluster, EmbeddedPostgres, Path]]:
    """The module's 3-broker cluster and PostgreSQL server (own ones: scenarios kill them)."""
    base = workdir / f"faults-{secrets.token_hex(3)}"
    cluster = start_cluster(base / "kafka")
    try:
        postgres = start_postgres(base)
        try:
            yield cluster, postgres, base
        finally:
            postgres.stop()
    finally:
        cluster.stop()
        shutil.rmtree(base / "kafka", ignore_errors=True)


@pytest.fixture
async def rig(
    faulty: tuple[KafkaCluster, EmbeddedPostgres, Path], request: pytest.FixtureRequest
) -> AsyncIterator[Rig]:
    cluster, postgres, base = faulty
    heal_cluster(cluster)  # a failed scenario may have left a broker down or paused
    if not postgres.alive():
        postgres.start(timeout_s=60)
    started = await Rig.create(cluster, postgres, base / "logs", aggregators=getattr(request, "param", 1))
    try:
        yield started
    finally:
        await started.close()


def driver_for(rig: Rig, seed: int) -> LoadDriver:
    return rig.driver(seed, RATE)


async def accept_more(driver: LoadDriver, count: int = PHASE, what: str = "", timeout_s: float = 180) -> None:
    await driver.until_accepted(driver.accepted_events + count, timeout_s=timeout_s, what=what)


def report(name: str, began: float, driver: LoadDriver, verdict: object, **extra: object) -> None:
    line = {"scenario": name, "seconds": round(time.monotonic() - began, 1), **driver.summary(), **vars(verdict)}
    print(f"\n[faults] {json.dumps({**line, **extra})}")


async def test_broker_sigkilled_and_restarted(rig: Rig) -> None:
    began = time.monotonic()
    driver = driver_for(rig, seed=31)
    await accept_more(driver, what="accepted before the fault")
    controller = await controller_of(rig.cluster)
    victim = other_node(rig.cluster, controller)
    victim.kill()
    # one broker of three down: acks=all with min ISR 2 keeps accepting
    await accept_more(driver, what="accepted with one broker down")
    victim.start()
    await wait_node_ready(victim)
    await accept_more(driver, what="accepted after the restart")
    verdict = await settle_and_verify(rig, driver)
    report("broker_sigkill", began, driver, verdict, victim=victim.node_id)


@full_only
async def test_active_controller_sigkilled_and_restarted(rig: Rig) -> None:
    began = time.monotonic()
    driver = driver_for(rig, seed=32)
    await accept_more(driver, what="accepted before the fault")
    controller = await controller_of(rig.cluster)
    rig.cluster.node(controller).kill()
    await accept_more(driver, what="accepted without the old controller")
    successor = await controller_of(rig.cluster)
    assert successor != controller, "a new controller was elected"
    rig.cluster.node(controller).start()
    await wait_node_ready(rig.cluster.node(controller))
    await accept_more(driver, what="accepted after the restart")
    verdict = await settle_and_verify(rig, driver)
    report("controller_sigkill", began, driver, verdict, controller=controller, successor=successor)


@full_only
async def test_broker_paused_then_resumed(rig: Rig) -> None:
    began = time.monotonic()
    driver = driver_for(rig, seed=33)
    await accept_more(driver, what="accepted before the fault")
    controller = await controller_of(rig.cluster)
    victim = other_node(rig.cluster, controller)
    victim.pause()  # SIGSTOP: a hung broker, its connections stay open
    paused_at = time.monotonic()
    try:
        # it is fenced and leaves the ISRs: writes go on without it
        await accept_more(driver, what="accepted while a broker is paused")
        await asyncio.sleep(max(0.0, PAUSE_S - (time.monotonic() - paused_at)))  # the fault's length
    finally:
        victim.resume()
    paused_s = time.monotonic() - paused_at
    await wait_node_ready(victim)
    await accept_more(driver, what="accepted after the resume")
    verdict = await settle_and_verify(rig, driver)
    report("broker_pause", began, driver, verdict, victim=victim.node_id, paused_s=round(paused_s, 1))


async def _ready_status(url: str) -> int:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{url}/readyz")).status_code
    except httpx.HTTPError:
        return 0


async def crash_right_after_a_commit(rig: Rig, timeout_s: float = 60) -> None:
    """SIGKILL PostgreSQL the moment a new aggregator commit becomes visible. The aggregator
    commits with synchronous_commit = off, so that commit may not have reached the OS yet:
    it is lost with the crash, together with its offsets."""
    conn = await asyncpg.connect(rig.dsn)
    try:
        query = "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE consumer_group = $1"
        before = await conn.fetchval(query, rig.group)
        deadline = time.monotonic() + timeout_s
        while await conn.fetchval(query, rig.group) == before:
            assert time.monotonic() < deadline, "no aggregator commit to crash after"
            await asyncio.sleep(0.002)
        rig.postgres.kill()
    finally:
        conn.terminate()


@full_only
async def test_postgres_sigkilled_and_restarted(rig: Rig) -> None:
    began = time.monotonic()
    driver = driver_for(rig, seed=34)
    await accept_more(driver, what="accepted before the fault")
    aggregator = rig.aggregators[0]
    await crash_right_after_a_commit(rig)
    down_at = time.monotonic()
    await eventually(
        lambda: _ready_status(aggregator.url), lambda s: s == 503, timeout_s=60, what="aggregator sees PostgreSQL down"
    )
    # keep it down a little longer than the failed-batch retry of the aggregator (1 s)
    await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - down_at)))
    rig.postgres.start(timeout_s=60)  # same data directory and port; from the main thread
    down_s = time.monotonic() - down_at
    await eventually(
        lambda: _ready_status(aggregator.url), lambda s: s == 200, timeout_s=90, what="aggregator ready again"
    )
    await accept_more(driver, what="accepted after the restart")
    verdict = await settle_and_verify(rig, driver)
    report("postgres_sigkill", began, driver, verdict, down_s=round(down_s, 1))


@full_only
@pytest.mark.parametrize("rig", [2], indirect=True, ids=["two-aggregators"])
async def test_sector_service_and_aggregator_sigkilled_and_restarted(rig: Rig) -> None:
    began = time.monotonic()
    driver = driver_for(rig, seed=35)
    await accept_more(driver, what="accepted before the fault")
    await rig.restart(rig.services["transport"])  # the busiest service, mid-request
    await accept_more(driver, what="accepted after the service restart")
    await rig.restart(rig.aggregators[0])
    await accept_more(driver, what="accepted after the aggregator restart")
    cut = sum(1 for a in driver.answers if a.status is None)
    assert cut >= 1, "requests to the killed service failed and were retried"
    verdict = await settle_and_verify(rig, driver)
    report("service_and_aggregator_sigkill", began, driver, verdict, cut_requests=cut)


@full_only
async def test_two_brokers_down_answers_503_never_202(rig: Rig) -> None:
    began = time.monotonic()
    driver = driver_for(rig, seed=36)
    await accept_more(driver, what="accepted before the fault")
    controller = await controller_of(rig.cluster)
    victims = [n for n in rig.cluster.nodes if n.node_id != controller]
    for victim in victims:
        victim.kill()
    killed_at = time.monotonic()

    async def refused_since_kill() -> int:
        return sum(1 for a in driver.answers_between(killed_at, float("inf")) if a.status == 503)

    await eventually(refused_since_kill, lambda n: n >= 4, timeout_s=60, what="503 answers with min ISR unmet")
    restart_at = time.monotonic()
    for victim in victims:
        victim.start()
    window = driver.answers_between(killed_at, restart_at)
    accepted_in_window = sum(a.accepted for a in window)
    assert accepted_in_window == 0, "an event was accepted while only one of three brokers was up"
    assert any(a.status == 503 for a in window)
    await asyncio.gather(*(wait_node_ready(v) for v in victims))
    await accept_more(driver, what="accepted after the restart")
    verdict = await settle_and_verify(rig, driver)
    report(
        "two_brokers_sigkill",
        began,
        driver,
        verdict,
        window_requests=len(window),
        window_503=sum(1 for a in window if a.status == 503),
    )
