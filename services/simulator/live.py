"""Drive the sector services like real sector systems would: batched CloudEvents over HTTP.

First history is sent as fast as the services take it - from 1 January 2025 by default, so
that the months before and after the reform of 1 July 2025 are there within minutes - then
events follow the clock. A batch answered 503 or not answered is retried with backoff - the
services only ever accept durable events. Progress is checkpointed (:mod:`.state`), so a
second run resumes where the first stopped and sends nothing twice; what a crash leaves in
doubt is resent with the same ids, which the aggregator counts once.
"""

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog

from schemas.sectors import sector_of
from services.core.calendar import VN
from services.core.units import UnitRegistry
from services.runtime.clock import Clock
from services.runtime.retry import call_retrying, retrying
from services.simulator.density import Density
from services.simulator.generator import SectorSystems
from services.simulator.state import LIVE_LEASE_S, Checkpoint, StateFile

log = structlog.get_logger(__name__)
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"


@dataclass
class Stats:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    by_sector: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Sender:
    """Posts batches to one service per sector, retrying until accepted or rejected."""

    def __init__(self, urls: dict[str, str], keys: dict[str, str], batch_size: int = 500) -> None:
        self.urls = urls
        self.keys = keys
        self.batch_size = batch_size
        self.stats = Stats()
        self.client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=16))

    async def close(self) -> None:
        await self.client.aclose()

    async def send(self, events: list[dict[str, Any]]) -> None:
        by_sector: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            sector = sector_of(event["type"])
            assert sector is not None
            by_sector[sector.value].append(event)
        await asyncio.gather(*(self._send_sector(s, evs) for s, evs in by_sector.items()))

    async def _send_sector(self, sector: str, events: list[dict[str, Any]]) -> None:
        for i in range(0, len(events), self.batch_size):
            await self._post(sector, events[i : i + self.batch_size])

    async def _post(self, sector: str, batch: list[dict[str, Any]]) -> None:
        """Post until every event is accepted or rejected (the service answers per event)."""
        pending = batch
        async for attempt in retrying(f"post {sector} events", (Unsettled, httpx.HTTPError), first_s=0.5, cap_s=10):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.stats.retries += 1
                try:
                    pending = await self._post_once(sector, pending)
                except Unsettled as exc:
                    pending = exc.events  # only what was not settled goes again
                    raise

    async def _post_once(self, sector: str, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One POST; raises Unsettled with the events to send again (none were accepted)."""
        answer = await self.client.post(
            f"{self.urls[sector]}/v1/events",
            content=json.dumps(pending),
            headers={"content-type": BATCH_MEDIA_TYPE, "authorization": f"Bearer {self.keys[sector]}"},
        )
        if answer.status_code in (200, 503) and "results" in answer.json():
            results = answer.json()["results"]
            retry = [pending[r["index"]] for r in results if r["status"] == "unavailable"]
            accepted = sum(1 for r in results if r["status"] == "accepted")
            rejected = [r for r in results if r["status"] == "rejected"]
            self.stats.accepted += accepted
            self.stats.by_sector[sector] += accepted
            self.stats.rejected += len(rejected)
            if rejected:
                log.warning("events rejected", sector=sector, count=len(rejected), first=rejected[0]["errors"])
            self.stats.sent += len(pending) - len(retry)
            if retry:
                raise Unsettled(retry)
            return []
        if answer.status_code < 500 and answer.status_code != 429:
            log.error("batch refused", sector=sector, status=answer.status_code, body=answer.text[:300])
            self.stats.rejected += len(pending)
            return []
        raise Unsettled(pending, f"HTTP {answer.status_code}")


class Unsettled(Exception):
    """Events the service did not settle (accept or reject); they are sent again."""

    def __init__(self, events: list[dict[str, Any]], why: str = "unavailable") -> None:
        super().__init__(f"{len(events)} event(s) {why}")
        self.events = events


class NotReady(Exception):
    pass


async def wait_ready(urls: dict[str, str], timeout_s: float = 120) -> None:
    """Until every service answers ``/readyz`` with 200; the last error after ``timeout_s``."""
    async with httpx.AsyncClient(timeout=2) as client:
        for url in urls.values():

            async def ready(url: str = url) -> None:
                if (await client.get(f"{url}/readyz")).status_code != 200:
                    raise NotReady(url)

            await call_retrying(f"wait for {url}", ready, (NotReady, httpx.HTTPError), give_up_after_s=timeout_s)


def start_run(
    registry: UnitRegistry,
    store: StateFile | None,
    now: dt.datetime,
    *,
    history_from: dt.datetime,
    full_days: float,
    seed: int,
    **options: Any,
) -> tuple[SectorSystems, float]:
    """The generator of this run and where it starts sending (epoch seconds).

    Without a checkpoint: from ``history_from``. With one: where it left off
    (:meth:`Checkpoint.resume_at`), with what it had scheduled; its seed wins. Either way hours
    not generated yet and older than ``full_days`` before ``now`` - the history, or the gap
    left by a long stop - get the history density, the rest the full rate.
    """
    density = Density(full_from=now.timestamp() - full_days * 86400)
    checkpoint = store.load() if store is not None else None
    if checkpoint is not None and checkpoint.seed != seed:
        log.warning("the checkpoint's seed wins", checkpoint_seed=checkpoint.seed, seed=seed)
    seed = checkpoint.seed if checkpoint is not None else seed
    sim = SectorSystems(registry, history_from, seed=seed, density=density, **options)
    if checkpoint is None:
        return sim, sim.next_hour * 3600.0
    start = checkpoint.resume_at(time.time())
    if start > checkpoint.cursor:
        log.warning(
            "checkpoint older than the deduplication horizon: its window is not sent again",
            window_from=_iso(checkpoint.cursor),
            window_to=_iso(start),
        )
    sim.restore(checkpoint.next_hour, (s for s in checkpoint.pending if s.deliver_at >= start))
    log.info("resuming", at=_iso(start), pending=len(sim.pending()), next_hour=_iso(checkpoint.next_hour * 3600))
    return sim, start


async def run_live(
    sim: SectorSystems,
    sender: Sender,
    clock: Clock,
    *,
    cursor: float,
    store: StateFile | None = None,
    stop: asyncio.Event | None = None,
    tick_s: float = 1.0,
    chunk_events: int = 50_000,
    lease_s: float = LIVE_LEASE_S,
    stop_at: float | None = None,
) -> float:
    """Send everything from ``cursor`` up to now (the history, in chunks of about
    ``chunk_events``), then keep up with the clock until ``stop`` (or until the cursor reaches
    ``stop_at``); returns the final cursor.

    Before sending past the last lease it writes a checkpoint (:mod:`.state`); it moves the
    cursor only over acknowledged events, and writes a final checkpoint when it stops between
    deliveries. Stopped in the middle of one, it leaves the last checkpoint as it is."""
    stop = stop or asyncio.Event()
    lease = cursor
    began, first = time.monotonic(), sender.stats.accepted
    caught_up = False
    while not stop.is_set() and (stop_at is None or cursor < stop_at):
        now = clock.now().timestamp() if stop_at is None else min(stop_at, clock.now().timestamp())
        if cursor >= lease:
            lease = _next_lease(sim, cursor, now, chunk_events, lease_s)
            _checkpoint(store, sim, cursor, lease)
        end = min(now, lease)
        if end > cursor:
            events = list(sim.pop(end))
            if events and not await _unless_stopped(sender.send(events), stop):
                return cursor  # stopped mid-delivery: the last checkpoint stays
            cursor = end
            if not caught_up and end < now:
                log.info("history chunk sent", up_to=_iso(end), events=sender.stats.accepted - first)
        if not caught_up and cursor >= now:
            caught_up = True
            seconds = round(time.monotonic() - began, 1)
            log.info("history sent", events=sender.stats.accepted - first, seconds=seconds, up_to=_iso(cursor))
        if cursor >= now and (stop_at is None or cursor < stop_at):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_s)
    _checkpoint(store, sim, cursor, cursor)
    return cursor


def _next_lease(sim: SectorSystems, cursor: float, now: float, chunk_events: int, lease_s: float) -> float:
    """How far the next round may send: a chunk of history while behind, else ``lease_s``
    past now; the hours up to there are generated."""
    if cursor < now - lease_s:
        return sim.advance(now, max_events=chunk_events)
    lease = now + lease_s
    sim.advance(lease)
    return lease


def _checkpoint(store: StateFile | None, sim: SectorSystems, cursor: float, lease: float) -> None:
    if store is not None:
        store.save(Checkpoint(sim.seed, cursor, lease, sim.next_hour, pending=sim.pending()))


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event, grace_s: float = 2.0) -> bool:
    """Run ``work`` to its end (True); when ``stop`` is set first, give it ``grace_s`` more,
    then cancel it (False)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        await asyncio.wait({task}, timeout=grace_s)
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


def load_keys(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    keys: dict[str, str] = data["ingest"]
    return keys


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, VN).isoformat(timespec="seconds")
