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
        delay = 0.5
        pending = batch
        while pending:
            try:
                answer = await self.client.post(
                    f"{self.urls[sector]}/v1/events",
                    content=json.dumps(pending),
                    headers={"content-type": BATCH_MEDIA_TYPE, "authorization": f"Bearer {self.keys[sector]}"},
                )
            except httpx.HTTPError as exc:
                log.warning("service unreachable; retrying", sector=sector, error=type(exc).__name__)
                answer = None
            if answer is not None and answer.status_code in (200, 503) and "results" in answer.json():
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
                pending = retry
            elif answer is not None and answer.status_code < 500 and answer.status_code not in (429,):
                log.error("batch refused", sector=sector, status=answer.status_code, body=answer.text[:300])
                self.stats.rejected += len(pending)
                return
            if pending:
                self.stats.retries += 1
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)


async def wait_ready(urls: dict[str, str], timeout_s: float = 120) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        deadline = asyncio.get_running_loop().time() + timeout_s
        for url in urls.values():
            while True:
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{url} not ready")
                await asyncio.sleep(0.5)


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
