"""Drive the sector services like real sector systems would: batched CloudEvents over HTTP.

First the recent past is sent as fast as the services take it (a backfill, so the dashboard
has history), then events follow the (shifted) clock in real time. A batch answered 503 or
not answered is retried with backoff - the services only ever accept durable events, and
duplicates are harmless (the aggregator counts each (source, id) once).
"""

import asyncio
import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog

from schemas.sectors import sector_of
from services.runtime.clock import Clock
from services.runtime.retry import call_retrying, retrying
from services.simulator.generator import SectorSystems

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


async def run_live(
    sim: SectorSystems, sender: Sender, clock: Clock, *, tick_s: float = 1.0, stop: asyncio.Event | None = None
) -> None:
    """Send everything up to now (the backfill), then keep up with the clock until stopped."""
    stop = stop or asyncio.Event()
    first = True
    while not stop.is_set():
        now = clock.now()
        events = list(sim.until(now))
        if events:
            await sender.send(events)
        if first:
            log.info("backfill sent", events=sender.stats.accepted, rejected=sender.stats.rejected)
            first = False
        try:
            await asyncio.wait_for(stop.wait(), timeout=tick_s)
        except TimeoutError:
            pass


def load_keys(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    keys: dict[str, str] = data["ingest"]
    return keys


def start_of_backfill(now: dt.datetime, days: float) -> dt.datetime:
    return now - dt.timedelta(days=days)
