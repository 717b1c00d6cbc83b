"""A second run of the simulator resumes from its state file and sends nothing the first run
sent; after a crash it resends only what was in doubt, with the same ids (which the
aggregator counts once); a checkpoint older than the deduplication horizon resends nothing.
Real parts: the generator, the live loop and the state file; only HTTP is replaced by a
sender that records what it was asked to deliver."""

import asyncio
import datetime as dt
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.migrate import reference_registry
from services.core.calendar import VN
from services.runtime.clock import FixedClock
from services.simulator.live import Stats, run_live, start_run
from services.simulator.state import HORIZON_S, Checkpoint, StateFile

REGISTRY = reference_registry()
NOW = dt.datetime(2026, 12, 2, 10, 0, tzinfo=VN)
RATE = 200
OPTIONS: dict[str, Any] = {"events_per_hour": RATE, "duplicate_rate": 0.02, "late_rate": 0.05}


class Crash(Exception):
    pass


@dataclass
class RecordingSender:
    """Acknowledges everything; with ``crash_on``, that call delivers half its events and
    the process dies (raises)."""

    crash_on: int | None = None
    delivered: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    stats: Stats = field(default_factory=Stats)

    async def send(self, events: list[dict[str, Any]]) -> None:
        self.calls += 1
        if self.calls == self.crash_on:
            self.delivered += events[: len(events) // 2]
            raise Crash
        self.delivered += events
        self.stats.accepted += len(events)


def keys(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((e["source"], e["id"]) for e in events)


def run(
    store: StateFile, sender: RecordingSender, now: dt.datetime, until: dt.datetime, *, full_days: float = 30
) -> float:
    """One run of the simulator, as ``python -m services.simulator live`` does it."""
    sim, cursor = start_run(
        REGISTRY, store, now, history_from=NOW - dt.timedelta(days=2), full_days=full_days, seed=3, **OPTIONS
    )
    clock = FixedClock(now)
    return asyncio.run(
        run_live(sim, sender, clock, cursor=cursor, store=store, chunk_events=1000, stop_at=until.timestamp())  # type: ignore[arg-type]
    )


def uninterrupted(tmp_path: Path, until: dt.datetime) -> RecordingSender:
    sender = RecordingSender()
    run(StateFile(tmp_path / "reference.json"), sender, until, until)
    return sender


def test_a_second_run_sends_nothing_the_first_sent_and_misses_nothing(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "simulator-state.json")
    first, second = RecordingSender(), RecordingSender()
    stopped = run(store, first, NOW, NOW - dt.timedelta(hours=20))  # stopped (Ctrl-C) mid-history
    checkpoint = store.load()
    assert checkpoint is not None and checkpoint.cursor == checkpoint.lease == stopped
    assert checkpoint.pending, "what the first run scheduled for later is kept"
    later = NOW + dt.timedelta(hours=3)
    run(store, second, later, later)
    assert first.delivered and second.delivered
    assert not set(keys(first.delivered)) & set(keys(second.delivered))
    assert keys(first.delivered) + keys(second.delivered) == keys(uninterrupted(tmp_path, later).delivered)


def test_after_a_crash_only_the_window_in_doubt_is_resent_with_the_same_ids(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "simulator-state.json")
    crashed, resumed = RecordingSender(crash_on=4), RecordingSender()
    with pytest.raises(Crash):
        run(store, crashed, NOW, NOW)
    doubt = store.load()
    assert doubt is not None and doubt.cursor < doubt.lease  # the checkpoint written before the 4th send
    run(store, resumed, NOW, NOW)
    again = set(keys(crashed.delivered)) & set(keys(resumed.delivered))
    assert again, "half of the 4th delivery went through and is sent again"
    in_window = {(s.event["source"], s.event["id"]) for s in doubt.pending if s.deliver_at < doubt.lease}
    assert again <= in_window
    everything = set(keys(uninterrupted(tmp_path, NOW).delivered))
    assert set(keys(crashed.delivered)) | set(keys(resumed.delivered)) == everything  # nothing lost


def test_a_checkpoint_older_than_the_horizon_resends_nothing(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "simulator-state.json")
    crashed, resumed = RecordingSender(crash_on=4), RecordingSender()
    with pytest.raises(Crash):
        run(store, crashed, NOW, NOW)
    body = json.loads(store.path.read_bytes())
    body["saved_at"] = time.time() - HORIZON_S - 60  # the stack stayed down for over a week
    store.path.write_text(json.dumps(body))
    run(store, resumed, NOW, NOW)
    assert resumed.delivered
    assert not set(keys(crashed.delivered)) & set(keys(resumed.delivered))


def test_a_long_stop_is_filled_at_the_history_density(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "simulator-state.json")
    run(store, RecordingSender(), NOW, NOW, full_days=1)
    back = NOW + dt.timedelta(days=30)
    gap = RecordingSender()
    run(store, gap, back, back, full_days=1)

    def per_day(first: dt.datetime, days: int) -> float:
        lo, hi = first.isoformat(), (first + dt.timedelta(days=days)).isoformat()
        return sum(1 for e in gap.delivered if lo <= e["time"] < hi) / days

    early, last_day = per_day(NOW + dt.timedelta(days=2), 7), per_day(back - dt.timedelta(days=1), 1)
    assert last_day > RATE * 24 * 0.8  # the last day at the full rate
    assert early < last_day / 5  # a month-old gap at the history density


def test_a_checkpoint_round_trips(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "state.json")
    assert store.load() is None
    sim, _cursor = start_run(REGISTRY, None, NOW, history_from=NOW, full_days=1, seed=9, **OPTIONS)
    sim.advance((NOW + dt.timedelta(hours=2)).timestamp())
    store.save(Checkpoint(9, 1.0, 2.0, sim.next_hour, pending=sim.pending()))
    loaded = store.load()
    assert loaded is not None and loaded.pending == sim.pending() and loaded.next_hour == sim.next_hour
    assert not list(tmp_path.glob("*.tmp"))
