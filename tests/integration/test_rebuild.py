"""Rebuild from history: counters and entity tables rebuilt from the Kafka topics into a
fresh schema equal the live ones after a simulator run - and a tampered live row is found."""

from pathlib import Path

import asyncpg
import pytest

from infra.rebuild import rebuild
from tests.integration.test_aggregator_exactly_once import aggregator, group_of, simulate, wait_caught_up
from tests.support.kafka import fill, new_prefix, provision
from tests.support.servers import Servers

pytestmark = pytest.mark.integration


async def test_rebuild_reproduces_live_counters_exactly(servers: Servers, dsn: str, workdir: Path) -> None:
    events = simulate(60_000, seed=31)
    prefix = new_prefix()
    kafka = provision(servers.bootstrap, prefix)
    ends = fill(servers.bootstrap, prefix, events)
    process = aggregator(servers, dsn, prefix, workdir)
    process.start()
    await wait_caught_up(dsn, ends)
    process.stop()

    report = await rebuild(dsn, kafka, group=group_of(prefix), schema="rebuild_a")
    assert report.events_read == len(events) == sum(ends.values())
    assert report.poison == 0
    assert report.differences == dict.fromkeys(report.differences, 0), report.samples
    assert set(report.differences) == {
        "counters_hourly",
        "counters_daily",
        "counters_monthly",
        "dossiers",
        "documents",
        "projects",
    }

    # negative control: a live counter that history does not support is reported
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE counters_daily SET value = value + 1 WHERE ctid = (SELECT ctid FROM counters_daily LIMIT 1)"
        )
    finally:
        await conn.close()
    tampered = await rebuild(dsn, kafka, group=group_of(prefix), schema="rebuild_b")
    assert tampered.differences["counters_daily"] == 2  # the live row and its rebuilt twin
    assert not tampered.identical
