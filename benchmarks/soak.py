"""Soak: the whole embedded stack at a steady ingest rate - throughput, latency, lag, memory.

``python -m benchmarks.soak [--rate 2000] [--duration 60]`` starts ``python -m infra.stack``
(``make run``'s stack: embedded Tansu broker and PostgreSQL, the four sector services, the
aggregator, the KPI API and the alerts worker, each its own process) on free ports in a
scratch directory, with its simulator off (``STACK_SIMULATOR=false``); with ``--bootstrap`` the
stack uses that (empty) Kafka instead of starting Tansu. Then:

load
    A client process sends the simulator's events (its sector mix, 1 % duplicate and 2 %
    late deliveries, ~20 000 events per simulated hour from Monday 2025-05-05) in batched
    mode: every ``--tick-ms`` (50 ms) the events due at ``--rate`` events/s since the start
    (100 per tick at 2000/s), split by sector, one request per sector, all in flight at once
    (at most ``--max-in-flight`` requests; a tick that finds no room waits, and the achieved
    rate shows it). Events answered ``unavailable`` are counted, not retried; a request
    that got no answer at all (connection error) is sent again, at most three times.
``accepted_events_per_s``
    Events answered ``accepted`` / seconds from the first request to the last answer.
``ingest_p50_ms`` / ``ingest_p99_ms``
    Per request, send to answer, as the client sees it.
``event_to_kpi_p50_ms`` / ``event_to_kpi_p99_ms``
    Probes: once a second the main process sends one ``culture.library.loan_recorded`` event
    (unique id) for unit 390 at 2025-06-20 03:00 local - an hour the load never touches - and
    polls ``counters_hourly`` every 10 ms on one connection until that hour's
    ``library.loans`` reaches the probe's number. Latency: from the probe's 202 (accepted,
    durable) to the first poll that sees it committed. Probes share a key, so they are
    counted in order.
``max_consumer_lag``
    Sampled every second: records accepted so far (load + probes, learnt from the answers;
    requests still in flight make it a slight underestimate) minus the sum of the
    aggregator's ``next_offset`` in ``consumer_offsets``. The broker's end offsets are not
    used (Tansu under-reports them); ``max_consumer_lag_metric`` is the sum of the
    aggregator's ``aggregator_consumer_lag`` gauges, for comparison.
``drain_s``
    After the load stops: until the aggregator's offsets reach every accepted record.
``rss_mb`` / ``rss_growth_mb``
    Resident memory of every process of the stack (the PostgreSQL entry is the PSS sum of
    the postmaster and all its backends - shared buffers counted once) before the load
    (``start``), after a warm-up of 10 % of the run (at least 10 s, ``warm``) and at the end
    of the load (``end``). ``rss_growth_mb`` is end - start, ``rss_growth_after_warmup_mb``
    end - warm (a leak shows there; caches filling up show in the first). The embedded Tansu
    broker keeps every record in memory, so its RSS grows with the data by design.
``timeline``
    Per window (a tenth of the run, 10-60 s): accepted events/s, ingest and event-to-KPI
    p50/p99, the largest lag, the services' own produce-to-acknowledgement time
    (``publish_p50_le_ms`` / ``publish_p99_le_ms``: upper bounds of their
    ``ingest_publish_seconds`` histogram buckets), CPU % per process and RSS per process.
``other_processes_cpu_s`` / ``machine_cpu_busy_pct``
    The machine's busy CPU during the load minus what the stack and this benchmark used:
    other work competing for the cores. Latencies measured on a busy machine say so here.

Progress goes to stderr; the last line of stdout is one JSON object.
"""

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, deque
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import psutil

from benchmarks.support import ROOT, SIMULATION_START, git_state, percentile, say
from infra.processes import free_port, spawn, stop

SECTORS = ("education", "health", "transport", "culture")
BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"
PROBE_UNIT = "390"
PROBE_TIME = "2025-06-20T03:00:00+07:00"
PROBE_BUCKET = dt.datetime(2025, 6, 19, 20, tzinfo=dt.UTC)  # the same hour in UTC
SERVICES = (*SECTORS, "aggregator", "kpi_api", "alerts")


# --------------------------------------------------------------------------- the stack


class Stack:
    """``python -m infra.stack`` in a scratch directory, on free ports, simulator off."""

    def __init__(self, data_dir: Path, bootstrap: str | None = None) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in SERVICES}
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
        if bootstrap:  # the stack then uses this broker and starts none (its RSS is not sampled)
            env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        env.update(
            STACK_DATA_DIR=str(data_dir),
            STACK_KAFKA_PORT=str(free_port()),
            STACK_POSTGRES_PORT=str(free_port()),
            STACK_SIMULATOR="false",
            PYTHONPATH=str(ROOT),
            LOG_LEVEL="WARNING",
            **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn([sys.executable, "-m", "infra.stack"], log_path=data_dir / "stack.out", env=env, cwd=ROOT)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def state(self) -> dict[str, Any]:
        path = self.data_dir / "stack.json"
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except json.JSONDecodeError:  # being replaced
            return {}

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        names: list[str] = []
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the stack exited with {self.proc.returncode}:\n{self.log_tail()}")
            services = self.state().get("services", {})
            names = [n for n, s in services.items() if s.get("port")]
            if names and all(self._ready(n) for n in names):
                return
            time.sleep(0.5)
        raise TimeoutError(f"stack not ready ({names}):\n{self.log_tail()}")

    def _ready(self, name: str) -> bool:
        try:
            return httpx.get(f"{self.url(name)}/readyz", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def credentials(self) -> dict[str, Any]:
        return json.loads((self.data_dir / "dev-credentials.json").read_text())

    def pids(self) -> dict[str, int]:
        state = self.state()
        out = {name: s["pid"] for name, s in state.get("services", {}).items() if s.get("pid")}
        if state.get("broker_pid"):
            out["broker"] = state["broker_pid"]
        if state.get("postgres_pid"):
            out["postgres"] = state["postgres_pid"]
        return out

    def restarts(self) -> dict[str, int]:
        return {n: s.get("restarts", 0) for n, s in self.state().get("services", {}).items()}

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.data_dir / "stack.out").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop(self.proc, timeout_s=20, sig=signal.SIGINT)


def memory_mb(name: str, pid: int) -> float | None:
    """RSS of one process; for PostgreSQL the PSS sum of the postmaster and its backends."""
    try:
        proc = psutil.Process(pid)
        if name == "postgres":
            total = 0
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_full_info().pss
            return round(total / 2**20, 1)
        return round(proc.memory_info().rss / 2**20, 1)
    except psutil.Error:
        return None


def cpu_seconds(name: str, pid: int) -> float:
    """User + system CPU of a process; for PostgreSQL also its live backends and (through
    the postmaster's children times) those that have exited."""
    try:
        proc = psutil.Process(pid)
        t = proc.cpu_times()
        total = t.user + t.system
        if name == "postgres":
            total += t.children_user + t.children_system
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    c = child.cpu_times()
                    total += c.user + c.system
        return total
    except psutil.Error:
        return 0.0


def snapshot(stack: Stack) -> dict[str, float | None]:
    return {name: memory_mb(name, pid) for name, pid in sorted(stack.pids().items())}


# --------------------------------------------------------------------------- the load client


def client_process(
    pipe: Connection,
    urls: dict[str, str],
    keys: dict[str, str],
    rate: float,
    duration_s: float,
    tick_s: float,
    max_in_flight: int,
    seed: int,
    accepted: "Synchronized[int]",
) -> None:
    """Runs in its own process: paced batched load, then the totals over the pipe."""
    result = asyncio.run(_load(urls, keys, rate, duration_s, tick_s, max_in_flight, seed, accepted, pipe))
    pipe.send(result)


async def _load(
    urls: dict[str, str],
    keys: dict[str, str],
    rate: float,
    duration_s: float,
    tick_s: float,
    max_in_flight: int,
    seed: int,
    accepted: "Synchronized[int]",
    pipe: Connection,
) -> dict[str, Any]:
    from infra.migrate import reference_units
    from schemas.sectors import sector_of
    from services.simulator.generator import SectorSystems

    sim = SectorSystems(
        reference_units(), SIMULATION_START, seed=seed, events_per_hour=20_000, duplicate_rate=0.01, late_rate=0.02
    )
    buffer: deque[dict[str, Any]] = deque()
    totals: Counter[str] = Counter()
    latencies: list[tuple[float, float]] = []  # (sent, seconds from the load's start; latency)
    first = time.monotonic()
    room = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    headers = {s: {"content-type": BATCH, "authorization": f"Bearer {keys[s]}"} for s in SECTORS}
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)

    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def post(sector: str, events: list[dict[str, Any]]) -> None:
            body = orjson.dumps(events)
            try:
                for attempt in range(3):  # an unanswered request is sent again (same ids)
                    began = time.perf_counter()
                    try:
                        response = await client.post(f"{urls[sector]}/v1/events", content=body, headers=headers[sector])
                        break
                    except httpx.HTTPError as exc:
                        totals[f"error_{type(exc).__name__}"] += 1
                        totals["failed_requests"] += 1
                        if attempt == 2:
                            totals["unanswered_events"] += len(events)
                            return
                        await asyncio.sleep(0.5)
                latencies.append((began - first, time.perf_counter() - began))
                totals["requests"] += 1
                if response.status_code not in (200, 503):
                    totals[f"http_{response.status_code}"] += 1
                    totals["unanswered_events"] += len(events)
                    return
                answer = orjson.loads(response.content)
                for outcome in ("accepted", "rejected", "unavailable"):
                    totals[outcome] += answer.get(outcome, 0)
                with accepted.get_lock():
                    accepted.value += answer.get("accepted", 0)
            finally:
                room.release()

        pipe.send("started")
        first = time.monotonic()
        sent = 0
        tick = 0
        while True:
            now = time.monotonic()
            if now - first >= duration_s:
                break
            due = int((now - first) * rate) - sent
            if due > 0:
                while len(buffer) < due:
                    buffer.extend(sim.take(5000))
                by_sector: dict[str, list[dict[str, Any]]] = {}
                for _ in range(due):
                    event = buffer.popleft()
                    sector = sector_of(event["type"])
                    assert sector is not None
                    by_sector.setdefault(sector.value, []).append(event)
                sent += due
                for sector, events in by_sector.items():
                    for start in range(0, len(events), 1000):  # the services' batch limit
                        await room.acquire()
                        task = asyncio.create_task(post(sector, events[start : start + 1000]))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
            tick += 1
            await asyncio.sleep(max(0.0, first + tick * tick_s - time.monotonic()))
        await asyncio.gather(*tasks)
        last = time.monotonic()
    return {
        "sent": sent,
        "seconds": last - first,
        "send_seconds": duration_s,
        "totals": dict(totals),
        "latencies": latencies,
    }


# --------------------------------------------------------------------------- measurement


class Probes:
    """One library loan a second for a dedicated unit and hour; event-to-KPI latency."""

    def __init__(self, url: str, key: str, dsn: str) -> None:
        self.url = url
        self.key = key
        self.dsn = dsn
        self.accepted_at: list[float] = []  # probe n (1-based) was accepted at [n - 1]
        self.latencies: list[float] = []
        self.failures = 0
        self.run = os.urandom(4).hex()

    async def send(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            n = 0
            while not stop.is_set():
                n += 1
                event = {
                    "specversion": "1.0",
                    "id": f"probe-{self.run}-{n}",
                    "source": "/soak/probe",
                    "type": "vn.gov.thanhhoa.culture.library.loan_recorded",
                    "time": PROBE_TIME,
                    "unit": PROBE_UNIT,
                    "data": {"format": "physical"},
                }
                began = time.monotonic()
                while True:  # same id until accepted: a later probe must not overtake it
                    try:
                        response = await client.post(
                            f"{self.url}/v1/events",
                            content=orjson.dumps(event),
                            headers={"content-type": STRUCTURED, "authorization": f"Bearer {self.key}"},
                        )
                        if response.status_code == 202:
                            break
                    except httpx.HTTPError:
                        pass
                    self.failures += 1
                    await asyncio.sleep(0.5)
                self.accepted_at.append(time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, 1.0 - (time.monotonic() - began)))

    async def watch(self, done: asyncio.Event) -> None:
        """Poll the probe hour's counter until every accepted probe is seen, and ``done``."""
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                value = await conn.fetchval(
                    "SELECT value FROM counters_hourly WHERE unit_code = $1 AND metric = 'library.loans' "
                    "AND sector = 'culture' AND bucket = $2",
                    PROBE_UNIT,
                    PROBE_BUCKET,
                )
                now = time.monotonic()
                counted = min(int(value or 0), len(self.accepted_at))
                while len(self.latencies) < counted:
                    self.latencies.append(max(0.0, now - self.accepted_at[len(self.latencies)]))
                if done.is_set() and len(self.latencies) >= len(self.accepted_at):
                    return
                await asyncio.sleep(0.01)
        finally:
            await conn.close()


async def committed_total(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval(
        "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE next_offset > 0 AND topic = ANY($1::text[])",
        [f"events.{s}" for s in SECTORS],
    )
    return int(value)


async def metric_lag(url: str) -> float | None:
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            text = (await client.get(f"{url}/metrics")).text
    except httpx.HTTPError:
        return None
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("aggregator_consumer_lag{"))


async def publish_buckets(urls: dict[str, str]) -> dict[float, float]:
    """The sector services' ``ingest_publish_seconds`` histogram (produce → broker ack per
    request), cumulative counts per upper bound, summed over the four services."""
    out: dict[float, float] = {}
    async with httpx.AsyncClient(timeout=3) as client:
        for url in urls.values():
            try:
                text = (await client.get(f"{url}/metrics")).text
            except httpx.HTTPError:
                continue
            for line in text.splitlines():
                if line.startswith("ingest_publish_seconds_bucket{"):
                    le = line.split('le="', 1)[1].split('"', 1)[0]
                    bound = float("inf") if le == "+Inf" else float(le)
                    out[bound] = out.get(bound, 0.0) + float(line.split()[-1])
    return out


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """Upper bound of the bucket holding the q-quantile of the observations between two scrapes."""
    delta = {b: after.get(b, 0.0) - before.get(b, 0.0) for b in after}
    total = delta.get(float("inf"), 0.0)
    if total <= 0:
        return None
    for bound in sorted(delta):
        if delta[bound] >= q * total:
            return bound
    return None


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, every process) since boot."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


def cpu_by_process(stack: Stack, extra: dict[str, int]) -> dict[str, float]:
    pids = {**stack.pids(), **extra}
    return {n: cpu_seconds(n, p) for n, p in pids.items()}


def window_stats(
    began: float,
    window: tuple[float, float],
    latencies: list[tuple[float, float]],
    probes: "Probes",
    lags: list[tuple[float, int]],
) -> dict[str, Any]:
    lo, hi = window
    ingest = [lat for sent, lat in latencies if lo <= sent < hi]
    e2k = [lat for at, lat in zip(probes.accepted_at, probes.latencies, strict=False) if lo <= at - began < hi]
    lag = [value for at, value in lags if lo <= at - began < hi]
    return {
        "t": round(hi),
        "requests": len(ingest),
        "ingest_p50_ms": ms(percentile(ingest, 50)) if ingest else None,
        "ingest_p99_ms": ms(percentile(ingest, 99)) if ingest else None,
        "event_to_kpi_p50_ms": ms(percentile(e2k, 50)) if e2k else None,
        "event_to_kpi_p99_ms": ms(percentile(e2k, 99)) if e2k else None,
        "max_lag": max(lag) if lag else None,
    }


async def measure(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    credentials = stack.credentials()
    keys = credentials["ingest"]
    dsn = stack.state()["database_url"]
    urls = {s: stack.url(s) for s in SECTORS}
    rss_start = snapshot(stack)
    say(f"rss before the load (MB): {rss_start}")

    ctx = multiprocessing.get_context("spawn")
    accepted = ctx.Value("q", 0)
    parent, child = ctx.Pipe()
    client = ctx.Process(
        target=client_process,
        args=(
            child,
            urls,
            keys,
            args.rate,
            args.duration,
            args.tick_ms / 1000,
            args.max_in_flight,
            args.seed,
            accepted,
        ),
        daemon=True,
    )
    client.start()
    ours = {"load_client": client.pid or 0, "soak": os.getpid()}
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, parent.recv) == "started"
    began = time.monotonic()
    cpu_start = cpu_by_process(stack, ours)
    busy_start = machine_busy_seconds()
    say(f"load: {args.rate:.0f} events/s for {args.duration:.0f} s")

    probes = Probes(urls["culture"], keys["culture"], dsn)
    stop_probes, probes_done = asyncio.Event(), asyncio.Event()
    sender = asyncio.create_task(probes.send(stop_probes))
    watcher = asyncio.create_task(probes.watch(probes_done))
    conn = await asyncpg.connect(dsn)
    lags: list[tuple[float, int]] = []
    metric_lags: list[float] = []
    rss_warm: dict[str, float | None] | None = None
    warm_after = max(10.0, args.duration * 0.1)
    window_s = max(10.0, min(60.0, args.duration / 10))
    windows: list[dict[str, Any]] = []  # resources per window; latencies are added at the end
    window_began, window_cpu, window_busy = 0.0, cpu_start, busy_start
    window_publish = await publish_buckets(urls)
    last_metric = 0.0
    result: dict[str, Any] | None = None
    try:
        while result is None:
            if parent.poll():
                result = parent.recv()
                break
            if not client.is_alive():
                raise RuntimeError("the load client died")
            produced = accepted.value + len(probes.accepted_at)
            lags.append((time.monotonic(), max(0, produced - await committed_total(conn))))
            elapsed = time.monotonic() - began
            if time.monotonic() - last_metric >= 5:
                last_metric = time.monotonic()
                value = await metric_lag(stack.url("aggregator"))
                if value is not None:
                    metric_lags.append(value)
            if rss_warm is None and elapsed >= warm_after:
                rss_warm = snapshot(stack)
                say(f"rss after warm-up (MB): {rss_warm}")
            if elapsed - window_began >= window_s:
                cpu_now, busy_now = cpu_by_process(stack, ours), machine_busy_seconds()
                span = elapsed - window_began
                cpu_pct = {n: round(100 * (cpu_now[n] - window_cpu.get(n, 0.0)) / span) for n in sorted(cpu_now)}
                cpu_pct["other_processes"] = round(
                    100 * ((busy_now - window_busy) - sum(cpu_now[n] - window_cpu.get(n, 0.0) for n in cpu_now)) / span
                )
                publish = await publish_buckets(urls)
                p50, p99 = (bucket_quantile(window_publish, publish, q) for q in (0.5, 0.99))
                window_publish = publish
                windows.append(
                    {
                        "window": (window_began, elapsed),
                        "accepted": accepted.value,
                        # produce → broker acknowledgement inside the services (bucket upper bounds)
                        "publish_p50_le_ms": ms(p50) if p50 is not None else None,
                        "publish_p99_le_ms": ms(p99) if p99 is not None else None,
                        "cpu_pct": cpu_pct,
                        "rss_mb": snapshot(stack),
                    }
                )
                say(
                    f"{elapsed:5.0f}s accepted {accepted.value} ({accepted.value / elapsed:.0f}/s), "
                    f"lag {lags[-1][1]}, probes {len(probes.latencies)}/{len(probes.accepted_at)}, "
                    f"cpu % {cpu_pct}, rss {windows[-1]['rss_mb']}"
                )
                window_began, window_cpu, window_busy = elapsed, cpu_now, busy_now
            await asyncio.sleep(1.0)
        rss_end = snapshot(stack)
        cpu_end = cpu_by_process(stack, ours)
        busy_end = machine_busy_seconds()
        load_seconds = time.monotonic() - began
        stop_probes.set()
        await sender
        # drain: every accepted record committed
        produced = accepted.value + len(probes.accepted_at)
        drain_began = time.monotonic()
        caught_up = False
        while time.monotonic() - drain_began < args.drain_timeout:
            if await committed_total(conn) >= produced:
                caught_up = True
                break
            await asyncio.sleep(0.1)
        drain_s = time.monotonic() - drain_began
        probes_done.set()
        try:
            await asyncio.wait_for(watcher, timeout=max(5.0, args.drain_timeout - drain_s))
        except TimeoutError:
            say("some probes were never counted")
    finally:
        await conn.close()
        client.join(timeout=10)
        if client.is_alive():
            client.kill()
    totals = result["totals"]
    latencies = [lat for _sent, lat in result["latencies"]]
    probe_lat = probes.latencies
    rss_warm = rss_warm or rss_start
    names = sorted(set(rss_start) | set(rss_end))

    def growth(before: dict[str, float | None]) -> dict[str, float | None]:
        return {
            n: round(rss_end[n] - before[n], 1) if rss_end.get(n) is not None and before.get(n) is not None else None
            for n in names
        }

    timeline = []
    previous_accepted = 0
    for w in windows:
        lo, hi = w["window"]
        stats = window_stats(began, (lo, hi), result["latencies"], probes, lags)
        stats["accepted_per_s"] = round((w["accepted"] - previous_accepted) / (hi - lo))
        previous_accepted = w["accepted"]
        timeline.append(
            {
                **stats,
                "publish_p50_le_ms": w["publish_p50_le_ms"],
                "publish_p99_le_ms": w["publish_p99_le_ms"],
                "cpu_pct": w["cpu_pct"],
                "rss_mb": w["rss_mb"],
            }
        )
    stack_cpu = {n: round(cpu_end.get(n, 0.0) - cpu_start.get(n, 0.0), 1) for n in sorted(cpu_start)}
    machine_busy = busy_end - busy_start
    return {
        "benchmark": "soak",
        "broker": f"{args.broker_kind} at {args.bootstrap}" if args.bootstrap else "tansu (embedded)",
        "rate_target": args.rate,
        "duration_s": args.duration,
        "events_sent": result["sent"],
        "achieved_send_rate": round(result["sent"] / result["send_seconds"], 1),
        "accepted_events": totals.get("accepted", 0),
        "accepted_events_per_s": round(totals.get("accepted", 0) / result["seconds"], 1),
        "rejected_events": totals.get("rejected", 0),
        "unavailable_events": totals.get("unavailable", 0),
        "unanswered_events": totals.get("unanswered_events", 0),
        "requests": totals.get("requests", 0),
        "failed_requests": totals.get("failed_requests", 0),
        "request_errors": {k: v for k, v in totals.items() if k.startswith(("error_", "http_"))},
        "ingest_p50_ms": ms(percentile(latencies, 50)) if latencies else None,
        "ingest_p99_ms": ms(percentile(latencies, 99)) if latencies else None,
        "ingest_max_ms": ms(max(latencies)) if latencies else None,
        "probes": len(probes.accepted_at),
        "probes_counted": len(probe_lat),
        "probe_retries": probes.failures,
        "event_to_kpi_p50_ms": ms(percentile(probe_lat, 50)) if probe_lat else None,
        "event_to_kpi_p99_ms": ms(percentile(probe_lat, 99)) if probe_lat else None,
        "event_to_kpi_max_ms": ms(max(probe_lat)) if probe_lat else None,
        "max_consumer_lag": max(v for _t, v in lags) if lags else None,
        "max_consumer_lag_metric": max(metric_lags) if metric_lags else None,
        "caught_up": caught_up,
        "drain_s": round(drain_s, 1),
        "rss_mb": {"start": rss_start, "warm": rss_warm, "end": rss_end},
        "rss_growth_mb": growth(rss_start),
        "rss_growth_after_warmup_mb": growth(rss_warm),
        "cpu_s": stack_cpu,
        # the machine's busy CPU during the load minus what the stack and this benchmark used:
        # other work on the machine competing for its cores (the numbers above suffer from it)
        "other_processes_cpu_s": round(machine_busy - sum(stack_cpu.values()), 1),
        "machine_cpu_busy_pct": round(100 * machine_busy / load_seconds / (psutil.cpu_count() or 1)),
        "timeline": timeline,
        "restarts": stack.restarts(),
        **git_state(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=2000.0, help="events per second over the four services")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--tick-ms", type=float, default=50.0, help="pacing interval")
    parser.add_argument("--max-in-flight", type=int, default=64, help="concurrent requests at most")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for the aggregator")
    parser.add_argument("--seed", type=int, default=20250505)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs)")
    parser.add_argument("--bootstrap", default=None, help="an external, empty Kafka (default: embedded Tansu)")
    parser.add_argument("--broker-kind", default="external", help="what --bootstrap is, for the report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="smartcity-soak-"))
    say(f"starting the stack in {data_dir}")
    stack = Stack(data_dir / "smartcity", args.bootstrap)
    try:
        stack.wait_ready()
        say("stack ready")
        report = asyncio.run(measure(stack, args))
    finally:
        stack.stop()
        if args.keep:
            say(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(report), flush=True)
    return report


if __name__ == "__main__":
    main()
