"""The aggregator's exactly-once effect, against a real broker and a real PostgreSQL.

Ground truth: simulator events (with duplicate deliveries and late events) are produced to
the sector topics; the expected counters are computed in memory from the same events. The
aggregator runs as a real process and is SIGKILLed at random moments; afterwards every
counter row in PostgreSQL must equal the expected one - nothing lost, nothing doubled.
"""

import datetime as dt
import os
import random
from pathlib import Path

import asyncpg
import httpx
import pytest

from infra.migrate import reference_units
from schemas.sectors import SECTORS
from services.core.units import UnitRegistry
from services.simulator.generator import SectorSystems
from tests.support.kafka import fill, new_prefix, provision
from tests.support.oracle import diff, distinct_type_counts, expected_counters, stored_counters
from tests.support.procs import ServiceProcess, service_env
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

FULL = os.environ.get("SMARTCITY_FULL") == "1"
UNITS = reference_units()
REGISTRY = UnitRegistry.from_units(UNITS)
START = dt.datetime(2025, 5, 5, tzinfo=dt.UTC)


def simulate(count: int, seed: int) -> list[dict[str, object]]:
    # ~3 000 events/hour: 200 000 events span about three days, so dossiers get resolved,
    # paid and rated; 2 % duplicate deliveries and 3 % late events.
    sim = SectorSystems(UNITS, START, seed=seed, events_per_hour=3000, duplicate_rate=0.02, late_rate=0.03)
    return sim.take(count)


async def committed(dsn: str) -> dict[tuple[str, int], int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT topic, partition, next_offset FROM consumer_offsets")
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
    finally:
        await conn.close()


def fraction_done(done: dict[tuple[str, int], int], ends: dict[tuple[str, int], int]) -> float:
    total = sum(ends.values())
    return sum(min(done.get(k, 0), v) for k, v in ends.items()) / total if total else 1.0


async def wait_caught_up(dsn: str, ends: dict[tuple[str, int], int], timeout_s: float = 180) -> None:
    await eventually(
        lambda: committed(dsn),
        # equality, not ≥: after a log reset the stored offsets of the old log exceed the new end
        lambda done: all(done.get(k, 0) == v for k, v in ends.items()),
        timeout_s=timeout_s,
        what="aggregator caught up with the log end",
    )


def group_of(prefix: str) -> str:
    """Each test's own consumer group: groups are global to the broker, unlike topics."""
    return f"agg-{prefix.rstrip('.')}"


def aggregator(servers: Servers, dsn: str, prefix: str, workdir: Path, **extra: str) -> ServiceProcess:
    env = service_env(
        servers.bootstrap,
        dsn,
        prefix,
        AGGREGATOR_BATCH_MAX_RECORDS="5000",
        AGGREGATOR_GROUP_ID=group_of(prefix),
        **extra,
    )
    return ServiceProcess("services.aggregator", env, "AGGREGATOR_PORT", workdir)


async def metric(process: ServiceProcess, name: str) -> float:
    """The sum of a metric's samples over its labels (0 while the process does not answer)."""
    async with httpx.AsyncClient() as client:
        try:
            text = (await client.get(f"{process.url}/metrics", timeout=2)).text
        except httpx.HTTPError:
            return 0.0
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.split("{")[0].split(" ")[0] == name)


async def assigned_partitions(process: ServiceProcess) -> float:
    return await metric(process, "aggregator_assigned_partitions")


async def assert_matches_ground_truth(dsn: str, events: list[dict[str, object]]) -> None:
    expected = expected_counters(events, REGISTRY)  # type: ignore[arg-type]
    stored = await stored_counters(dsn)
    problems = diff(expected, stored)
    assert not problems, "counters differ from ground truth:\n" + "\n".join(problems)
    assert len(stored) == len(expected)
    # An independent cross-check that does not use the aggregator's rules: distinct events
    # per type equal the province-level totals of the counters they drive.
    by_type = distinct_type_counts(events)  # type: ignore[arg-type]
    conn = await asyncpg.connect(dsn)
    try:
        for type_, metric in (
            ("vn.gov.thanhhoa.transport.fare.tapped", "fare.boardings"),
            ("vn.gov.thanhhoa.health.appointment.booked", "appointment.booked"),
            ("vn.gov.thanhhoa.education.dossier.received", "dossier.received"),
        ):
            sector = type_.split(".")[3]
            total = await conn.fetchval(
                "SELECT coalesce(sum(value), 0) FROM counters_monthly "
                "WHERE unit_code = '38' AND metric = $1 AND sector = $2",
                metric,
                sector,
            )
            assert total == by_type[type_], (type_, total, by_type[type_])
    finally:
        await conn.close()


async def test_sigkilled_aggregator_counts_every_event_exactly_once(servers: Servers, dsn: str, workdir: Path) -> None:
    events = simulate(400_000 if FULL else 200_000, seed=11)
    assert sum(1 for e in events if e["time"]) == len(events)
    prefix = new_prefix()
    provision(servers.bootstrap, prefix)
    ends = fill(servers.bootstrap, prefix, events)
    rng = random.Random(20251105)
    kill_points = sorted(rng.uniform(0.1, 0.9) for _ in range(4 if FULL else 3))
    process = aggregator(servers, dsn, prefix, workdir)
    process.start()
    for point in kill_points:
        await eventually(
            lambda: committed(dsn),
            lambda d, p=point: fraction_done(d, ends) >= p,
            timeout_s=120,
            every_s=0.02,
            what=f"{point:.0%} committed",
        )
        process.kill()  # SIGKILL: no shutdown, whatever batch was in flight is lost
        process.start()
    await wait_caught_up(dsn, ends)
    process.stop()
    await assert_matches_ground_truth(dsn, events)


async def test_two_aggregators_share_partitions_through_rebalances(servers: Servers, dsn: str, workdir: Path) -> None:
    events = simulate(200_000 if FULL else 120_000, seed=12)
    half, three_quarters = len(events) // 2, len(events) * 3 // 4
    first_half, third_quarter, last_quarter = events[:half], events[half:three_quarters], events[three_quarters:]
    prefix = new_prefix()
    provision(servers.bootstrap, prefix)
    first = aggregator(servers, dsn, prefix, workdir)
    second = aggregator(servers, dsn, prefix, workdir)
    first.start()
    second.start()
    owns = assigned_partitions
    try:
        # both members own partitions before any event exists
        for member in (first, second):
            await eventually(lambda m=member: owns(m), lambda n: n > 0, timeout_s=90, what="both own partitions")
        ends = fill(servers.bootstrap, prefix, first_half)
        await eventually(
            lambda: committed(dsn),
            lambda d: fraction_done(d, ends) >= 0.3,
            timeout_s=120,
            every_s=0.02,
            what="30% committed",
        )
        second.kill()  # rebalance one way: the survivor takes every partition over …
        partitions = 8 * len(SECTORS)
        await eventually(
            lambda: owns(first), lambda n: n == partitions, timeout_s=90, what=f"first owns all {partitions} partitions"
        )
        second.start()  # … and back when the second returns, while the first is busy …
        ends = {**ends, **fill(servers.bootstrap, prefix, third_quarter)}
        await eventually(lambda: owns(second), lambda n: n > 0, timeout_s=90, what="second owns partitions again")
        # … with work left for it: produced only once it owns partitions, so it cannot be
        # drained before the rebalance however fast the first member is
        ends = {**ends, **fill(servers.bootstrap, prefix, last_quarter)}
        await wait_caught_up(dsn, ends)
        assert await metric(second, "aggregator_events_total") > 0, "the returned member processed events"
    finally:
        first.stop()
        second.stop()
    await assert_matches_ground_truth(dsn, events)
    conn = await asyncpg.connect(dsn)
    try:
        generations = await conn.fetchval("SELECT max(generation) FROM consumer_offsets")
    finally:
        await conn.close()
    assert generations >= 3, "partitions were claimed at least three times (start, kill, return)"
