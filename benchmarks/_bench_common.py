"""Helpers of ``benchmarks.aggregate`` and ``benchmarks.kpi_queries`` (``benchmarks.support``
belongs to the ingest benchmark; what is reused from it is imported, not copied).

Servers here keep their process ids, so a benchmark can report the CPU time the broker and
PostgreSQL spent during a phase next to the service's own.
"""

import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from benchmarks.support import (  # noqa: F401 - re-exported for the two benchmarks
    ROOT,
    SIMULATION_START,
    drop_database,
    fresh_database,
    git_state,
    percentile,
    say,
)
from infra.migrate import reference_registry

# The fetch settings of services.aggregator.worker.Aggregator._new_consumer (kept equal by
# hand: the raw-drain baseline must read with the same client configuration).
WORKER_FETCH_CONF: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "max.poll.interval.ms": 300_000,
    "fetch.max.bytes": 52_428_800,
    "max.partition.fetch.bytes": 10_485_760,
    "queued.max.messages.kbytes": 262_144,
    "partition.assignment.strategy": "range",
}


def logs_to_stderr() -> None:
    """structlog prints to stdout unless configured; stdout is for the JSON line only."""
    import sys

    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def fresh_name(tag: str) -> str:
    return f"bench_{tag}_{secrets.token_hex(4)}"


@dataclass
class BenchServers:
    bootstrap: str
    admin_dsn: str
    broker: str  # "tansu" or "external"
    broker_pid: int | None
    postgres_pid: int | None

    def dsn_for(self, database: str) -> str:
        return f"{self.admin_dsn.rpartition('/')[0]}/{database}"


@contextlib.contextmanager
def bench_servers(
    workdir: Path, bootstrap: str | None = None, database_url: str | None = None
) -> Iterator[BenchServers]:
    """The embedded Tansu broker and PostgreSQL (unless external ones are given), with pids."""
    from tests.support.servers import start_servers

    saved = {k: os.environ.pop(k, None) for k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    if bootstrap:
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    started = start_servers(workdir)
    try:
        srv = next(started)
        yield BenchServers(
            srv.bootstrap,
            srv.admin_dsn,
            srv.broker_kind,
            srv.broker.proc.pid if srv.broker and srv.broker.proc else None,
            srv.postgres.proc.pid if srv.postgres and srv.postgres.proc else None,
        )
    finally:
        with contextlib.suppress(StopIteration):
            next(started)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def tree_cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process, its live descendants and its reaped children."""
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        t = proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                ct = child.cpu_times()
                total += ct.user + ct.system
        return total
    except psutil.Error:
        return 0.0


class CpuMeter:
    """CPU seconds spent by named process trees between ``start()`` and ``stop()``."""

    def __init__(self, **pids: int | None) -> None:
        self.pids = {k: v for k, v in pids.items() if v is not None}
        self.before: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def start(self) -> "CpuMeter":
        self.before = {k: tree_cpu_seconds(p) for k, p in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.seconds = {k: round(tree_cpu_seconds(p) - self.before[k], 2) for k, p in self.pids.items()}
        return self.seconds


class RssSampler(threading.Thread):
    """Samples a process's resident set size every ``every_s``; ``peak_mb`` is the maximum."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid, self.every_s = pid, every_s
        self.peak = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            proc = psutil.Process(self.pid)
            while not self._halt.is_set():
                self.peak = max(self.peak, proc.memory_info().rss)
                self.samples += 1
                self._halt.wait(self.every_s)
        except psutil.Error:
            pass

    def stop(self) -> float:
        self._halt.set()
        self.join(2)
        return round(self.peak / 2**20, 1)


def simulated(
    count: int, seed: int, events_per_hour: float, start: dt.datetime = SIMULATION_START, chunk: int = 50_000
) -> Iterator[dict[str, Any]]:
    """``count`` simulator events (with its default 1 % duplicate and 2 % late deliveries),
    generated chunk by chunk so that a million of them never sit in memory at once."""
    from services.simulator.generator import SectorSystems

    registry = reference_registry()
    sim = SectorSystems(list(registry.units), start, seed=seed, events_per_hour=events_per_hour)
    # BENCH_UNIT_GRAIN=district names each old commune's district instead (the simulator's
    # grain before the commune-scale work, which the figures of 2026-11-26 were measured on)
    to_district = os.environ.get("BENCH_UNIT_GRAIN", "commune") == "district"
    left = count
    while left > 0:
        events = sim.take(min(chunk, left))
        if not events:
            raise RuntimeError("the simulation ran past the units' validity (2025-06-30)")
        left -= len(events)
        if to_district:
            for event in events:
                day = dt.datetime.fromisoformat(event["time"]).date()
                lineage = registry.lineage(event["unit"], day)
                if len(lineage) > 2:
                    event["unit"] = lineage[1]
        yield from events


async def committed_offsets(conn: asyncpg.Connection, group: str) -> dict[tuple[str, int], int]:
    rows = await conn.fetch(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = $1", group
    )
    return {(r[0], r[1]): r[2] for r in rows}


def stats_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}
    return {
        "p50": round(percentile(values, 50), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2),
        "n": len(values),
    }


# -- subprocesses of the aggregate benchmark --------------------------------------------------

Ends = dict[tuple[str, int], int]


def raw_drain_child(pipe: Any, bootstrap: str, topics: list[str], ends: Ends) -> None:
    """Subprocess: read ``ends`` with the worker's fetch settings (fresh group), decoding
    only; sends the seconds from assignment to the last record."""
    import orjson
    from confluent_kafka import OFFSET_BEGINNING, Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": fresh_name("raw"),
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2000,
            **WORKER_FETCH_CONF,
        }
    )
    assigned: list[float] = []

    def on_assign(c: Any, partitions: list[Any]) -> None:
        for tp in partitions:
            tp.offset = OFFSET_BEGINNING
        c.assign(partitions)
        assigned.append(time.monotonic())

    consumer.subscribe(topics, on_assign=on_assign)
    remaining = dict(ends)
    count = 0
    cpu0 = time.process_time()
    loads = orjson.loads
    while remaining:
        for message in consumer.consume(20_000, 0.05):
            if message.error() is not None:
                continue
            headers = dict(message.headers() or ())
            data = loads(message.value())
            count += 1
            key = (message.topic(), message.partition())
            if message.offset() + 1 >= remaining.get(key, 1 << 62):
                del remaining[key]
        if not assigned and time.process_time() - cpu0 > 120:
            raise TimeoutError("no assignment")
    done = time.monotonic()
    cpu = time.process_time() - cpu0
    consumer.close()
    del headers, data
    pipe.send({"seconds": done - assigned[0], "records": count, "cpu_s": round(cpu, 2)})


def steady_producer_child(pipe: Any, bootstrap: str, prefix: str, rate: int, seconds: float, seed: int) -> None:
    """Subprocess: pre-encode ``rate * seconds`` simulator events, then on "go" produce them at
    ``rate``/s (idempotent, acks=all, linger 5 ms, like the ingest services) and send back
    every delivery report (topic, partition, offset, CreateTime ms)."""
    from confluent_kafka import Producer

    from schemas.sectors import sector_of
    from schemas.topics import sector_topic
    from services.simulator.encode import to_record

    start = dt.datetime(2025, 5, 12, tzinfo=dt.UTC)
    records = []
    for event in simulated(int(rate * seconds), seed, 20_000, start):
        key, value, headers = to_record(event)
        records.append((sector_topic(sector_of(event["type"]), prefix), key, value, headers))
    delivered: list[tuple[str, int, int, int]] = []
    failed = []

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(str(err))
        else:
            delivered.append((msg.topic(), msg.partition(), msg.offset(), msg.timestamp()[1]))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "on_delivery": report,
        }
    )
    producer.produce(f"{prefix}kpi-updates", b"{}", b"warm")  # connect, get a producer id (a topic
    producer.flush(30)  # the aggregator does not read)
    delivered.clear()
    pipe.send("ready")
    assert pipe.recv() == "go"
    began = time.monotonic()
    tick = 50
    for i in range(0, len(records), tick):
        wait = began + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        for topic, key, value, headers in records[i : i + tick]:
            producer.produce(topic, value, key, headers=headers)
        producer.poll(0)
    produced_s = time.monotonic() - began
    producer.flush(60)
    pipe.send({"delivered": delivered, "failed": failed[:5], "produced_s": produced_s})


class SteadyLoad:
    """:func:`steady_producer_child` in a spawned process: ``await start()`` returns once its
    events are encoded and it is connected, ``go()`` starts the load, ``await result()``
    returns its delivery reports."""

    def __init__(self, bootstrap: str, prefix: str, rate: int, seconds: float, seed: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=steady_producer_child, args=(child, bootstrap, prefix, rate, seconds, seed))

    async def start(self) -> None:
        self.process.start()
        assert await asyncio.get_running_loop().run_in_executor(None, self._pipe.recv) == "ready"

    def go(self) -> None:
        self._pipe.send("go")

    async def result(self) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(None, self._pipe.recv)
        self.process.join(30)
        return result


# -- the aggregator as a real process ----------------------------------------------------------


class AggregatorProcess:
    """``python -m services.aggregator`` as a real process (or a ``--variant-cmd`` of it)."""

    def __init__(
        self, srv: Any, dsn: str, prefix: str, group: str, workdir: Path, variant: dict[str, Any] | None = None
    ) -> None:
        from infra.processes import free_port, spawn

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = dict(
            os.environ,
            KAFKA_BOOTSTRAP_SERVERS=srv.bootstrap,
            KAFKA_TOPIC_PREFIX=prefix,
            DATABASE_URL=dsn,
            PYTHONPATH=str(ROOT),
            AGGREGATOR_GROUP_ID=group,
            AGGREGATOR_PUBLISH_KPI_UPDATES="true",
            AGGREGATOR_PORT=str(port),
            **(variant or {}).get("env", {}),
        )
        argv = variant["argv"] if variant else [sys.executable, "-m", "services.aggregator"]
        self.log_path = workdir / f"aggregator-{port}.log"
        self.proc = spawn(argv, log_path=self.log_path, env=env, cwd=ROOT)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        from infra.processes import stop

        stop(self.proc, timeout_s=15)


def metrics_of(url: str) -> dict[str, float]:
    wanted = (
        "aggregator_batch_records_sum",
        "aggregator_batch_records_count",
        "aggregator_batch_commit_seconds_sum",
        "aggregator_events_total",
        "aggregator_dead_letters_total",
    )
    out: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError):
        for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
            if line.startswith(wanted):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
    return out


async def wait_claimed(
    conn: asyncpg.Connection, group: str, service: Any, partitions: int = 1, timeout_s: float = 120
) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(await committed_offsets(conn, group)) >= partitions:
            return time.monotonic()
        if service.proc.poll() is not None:
            raise RuntimeError(f"aggregator exited:\n{service.log_tail()}")
        await asyncio.sleep(0.02)
    raise TimeoutError(f"aggregator never claimed its partitions:\n{service.log_tail()}")


# -- the KPI benchmark's synthetic data --------------------------------------------------------


async def parallel(dsn: str, statements: list[str], workers: int = 2) -> None:
    """Run statements on ``workers`` connections (the draws are CPU-bound in PostgreSQL)."""
    queue = list(reversed(statements))

    async def worker(n: int) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"SET work_mem = '256MB'; SELECT setseed({n / 10})")
            while queue:
                await conn.execute(queue.pop())
        finally:
            await conn.close()

    await asyncio.gather(*(worker(n) for n in range(workers)))


# fmt: off
DOSSIER_COLUMNS = ["dossier_id", "sector", "unit_code", "received_at", "due_at", "channel", "procedure_code",
                   "fee_required", "supplement_count", "paused_seconds", "pause_started_at", "resolved_at"]
PROJECT_COLUMNS = ["project_id", "sector", "unit_code", "title", "stage", "stage_changed_at", "planned_completion",
                   "percent_complete", "planned_percent", "progress_reported_at"]
# fmt: on


def synthetic_dossiers(*args: Any, **kwargs: Any) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """(columns, rows): dossiers received in the last 120 days, the first ones of each leaf open;
    none falls due within hours after ``now`` (their live counts stay put during a run)."""
    return DOSSIER_COLUMNS, _dossiers(*args, **kwargs)


def synthetic_projects(*args: Any, **kwargs: Any) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    return PROJECT_COLUMNS, _projects(*args, **kwargs)


def _dossiers(
    rng: Any, now: dt.datetime, leaves: list[str], open_per_leaf: int = 150, resolved_per_leaf: int = 450
) -> Iterator[tuple[Any, ...]]:
    sectors = ("education", "health", "transport", "culture")
    for code in leaves:
        for i in range(open_per_leaf + resolved_per_leaf):
            received = now - dt.timedelta(days=rng.uniform(0, 120))
            due = received + dt.timedelta(days=rng.choice((3, 5, 7, 10, 15)))
            supplements = rng.choice((0, 0, 0, 0, 1, 2))
            paused = int(rng.uniform(0, 3) * 86400) if supplements else 0
            # no effective due time within hours after `now`: answers stay equal while a run lasts
            if dt.timedelta(hours=-1) < due + dt.timedelta(seconds=paused) - now < dt.timedelta(hours=3):
                due += dt.timedelta(hours=4)
            resolved = None if i < open_per_leaf else min(now, received + dt.timedelta(days=rng.uniform(0.5, 20)))
            pause_start = (
                now - dt.timedelta(hours=rng.uniform(1, 48))
                if supplements == 1 and not resolved and rng.random() < 0.3
                else None
            )
            yield (
                f"H56-{code}-{i}",
                rng.choice(sectors),
                code,
                received,
                due,
                rng.choice(("online", "counter")),
                f"1.{rng.randint(1000, 9999)}",
                rng.random() < 0.6,
                supplements,
                paused,
                pause_start,
                resolved,
            )


def _projects(rng: Any, now: dt.datetime, leaves: list[str], count: int = 40) -> Iterator[tuple[Any, ...]]:
    stages = ("proposal", "design", "appraisal", "in_progress", "completed")
    for i in range(count):
        stage = stages[i % 5]
        yield (
            f"DA-bench-{i}",
            ("education", "health", "transport", "culture")[i % 4],
            rng.choice(leaves),
            f"Project {i}",
            stage,
            now - dt.timedelta(days=rng.uniform(10, 300)),
            (now + dt.timedelta(days=rng.randint(-30, 400))).date(),
            rng.uniform(0, 100),
            rng.uniform(0, 100),
            now - dt.timedelta(days=rng.uniform(0, 14)),
        )


# -- py-spy ---------------------------------------------------------------------------------

PROFILE_BUCKETS: dict[str, tuple[str, ...]] = {
    # label: substrings of a frame ("function (file:line)"); first match from the leaf wins
    "kafka consume (librdkafka, C)": ("_consume (services/aggregator/worker.py",),
    "record_of (Message → Record)": ("record_of (",),
    "decode: pydantic validation": ("model_validate_json", "pydantic"),
    "decode: headers, time, digest": ("_decode (", "decode (services/aggregator/domain/decode.py"),
    "batch.add / unique_new": ("add (services/aggregator/domain/batch.py", "unique_new ("),
    "fold / expand (pure)": ("fold (", "expand (", "_entity_delta ("),
    "asyncpg (encode, protocol)": ("asyncpg",),
    "store.commit (own Python)": ("services/aggregator/adapters/postgres.py", "services/aggregator/flush.py"),
    "kpi-updates publish": ("kpi_updates (", "_publish_updates (", "services/runtime/kafka.py", "KpiUpdate"),
    "prometheus / latency metrics": ("prometheus_client", "_observe_latency ("),
    "asyncio event loop": ("asyncio", "uvloop"),
}


def summarise_pyspy(raw_path: Path, top: int = 25) -> dict[str, Any]:
    """Collapsed py-spy stacks → share of samples by bucket (innermost own frame decides)
    and the top functions by own ("self") samples."""
    buckets: dict[str, int] = {}
    own: dict[str, int] = {}
    threads: dict[str, int] = {}
    total = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        total += count
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "?"
        threads[thread] = threads.get(thread, 0) + count
        leaf = frames[-1]
        own[leaf] = own.get(leaf, 0) + count
        label = "other"
        for frame in reversed(frames):
            hit = next((name for name, keys in PROFILE_BUCKETS.items() if any(k in frame for k in keys)), None)
            if hit:
                label = hit
                break
        buckets[label] = buckets.get(label, 0) + count
    if not total:
        return {"samples": 0}
    pct = lambda n: round(100 * n / total, 1)  # noqa: E731
    return {
        "samples": total,
        "buckets_pct": {k: pct(v) for k, v in sorted(buckets.items(), key=lambda kv: -kv[1])},
        "threads_pct": {k[:60]: pct(v) for k, v in sorted(threads.items(), key=lambda kv: -kv[1])[:6]},
        "top_self_pct": {k[:110]: pct(v) for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:top]},
    }
