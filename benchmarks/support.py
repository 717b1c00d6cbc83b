"""What the benchmarks share: servers (embedded or external), a fresh database, topics,
keys, service processes, simulator events, and small statistics helpers.

Human-readable progress goes to stderr (:func:`say`); stdout is kept for the one JSON line
a benchmark prints at the end.
"""

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from infra.migrate import migrate, reference_units
from infra.processes import free_port, spawn, stop
from infra.topics import provision_topics
from services.runtime.auth import create_key
from services.runtime.settings import KafkaSettings
from services.simulator.generator import SectorSystems

ROOT = Path(__file__).resolve().parents[1]
# The reference units end on 2025-06-30 and the services reject events outside a unit's
# validity, so simulated time runs in May 2025.
SIMULATION_START = dt.datetime(2025, 5, 5, tzinfo=dt.UTC)

_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Servers:
    bootstrap: str
    admin_dsn: str
    broker: str  # "tansu" (embedded) or "external"

    def dsn_for(self, database: str) -> str:
        base, _, _ = self.admin_dsn.rpartition("/")
        return f"{base}/{database}"


@contextlib.contextmanager
def servers(workdir: Path, bootstrap: str | None, database_url: str | None) -> Iterator[Servers]:
    """The embedded Tansu broker and PostgreSQL, unless external ones are given."""
    from tests.support.servers import start_servers

    saved = {k: os.environ.get(k) for k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    os.environ.pop("DATABASE_URL", None)
    if bootstrap:
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    try:
        started = start_servers(workdir)
        running = next(started)
        try:
            yield Servers(running.bootstrap, running.admin_dsn, running.broker_kind)
        finally:
            with contextlib.suppress(StopIteration):
                next(started)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def fresh_database(admin_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_dsn.rpartition("/")
    dsn = f"{base}/{name}"
    await migrate(dsn)
    return dsn


async def ingest_key(dsn: str, sector: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return (await create_key(conn, kind="ingest", label="benchmark", sector=sector)).key
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def provision(bootstrap: str, prefix: str) -> None:
    provision_topics(KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix))


def new_prefix(tag: str) -> str:
    return f"bench{tag}{secrets.token_hex(3)}."


def count_records(bootstrap: str, topic: str, timeout_s: float = 120.0) -> int:
    """How many records ``topic`` holds, counted by reading every partition to its end.

    Counted by consuming, not from ListOffsets: the embedded Tansu answers ListOffsets
    (latest) with the base offset of the last record batch + 1, which undercounts
    multi-record batches. End-of-partition events come from the fetch high watermark,
    which it reports correctly.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "count-" + secrets.token_hex(3),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.max.bytes": 52_428_800,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        count = 0
        deadline = time.monotonic() + timeout_s
        while len(at_end) < len(partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for message in consumer.consume(10_000, 0.5):
                error = message.error()
                if error is None:
                    count += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise RuntimeError(str(error))
        return count
    finally:
        consumer.close()


def sector_events(sector: str, count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` distinct simulator events of one sector (distinct ids), in delivery order.

    The simulator's duplicate deliveries are dropped: here every event is a new one.
    """
    sim = SectorSystems(
        reference_units(), SIMULATION_START, seed=seed, duplicate_rate=0.0, late_rate=0.0, projects=False
    )
    out: list[dict[str, Any]] = []
    marker = f".{sector}."
    while len(out) < count:
        chunk = sim.take(50_000)
        if not chunk:
            raise RuntimeError("the simulation ran past the units' validity")
        out.extend(event for event in chunk if marker in event["type"])
    return out[:count]


class Service:
    """A sector service as a real process (``python -m services.<sector>``)."""

    def __init__(self, sector: str, bootstrap: str, dsn: str, prefix: str, log_dir: Path, **extra: str) -> None:
        self.sector = sector
        self.port = free_port()
        var = sector.upper()
        self.env = dict(os.environ)
        self.env.update(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            KAFKA_TOPIC_PREFIX=prefix,
            DATABASE_URL=dsn,
            PYTHONPATH=str(ROOT),
            LOG_LEVEL="WARNING",
            LOG_JSON="false",
            **{
                f"{var}_PORT": str(self.port),
                f"{var}_RATE_LIMIT_PER_S": "1000000",
                f"{var}_RATE_LIMIT_BURST": "1000000",
            },
        )
        self.env.update(extra)
        self.log_path = log_dir / f"{sector}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0, argv: list[str] | None = None) -> None:
        """Start (``argv`` replaces ``python -m services.<sector>``) and wait until ready."""
        import httpx

        argv = argv or [sys.executable, "-m", f"services.{self.sector}"]
        self.proc = spawn(argv, log_path=self.log_path, env=self.env, cwd=ROOT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"service not ready: {self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the service process (all its threads)."""
        assert self.proc is not None
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout_s=10)


def process_cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system + times.children_user + times.children_system


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the working tree differed from it."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha, "dirty": bool(dirty)}


@contextlib.contextmanager
def scratch(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="smartcity-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def variant_of(command: str | None, env: list[str]) -> dict[str, Any] | None:
    """A ``--variant-cmd`` / ``--variant-env`` proposal as argv and environment (None: none);
    a bare ``python`` means this interpreter."""
    if not command:
        return None
    cmd = shlex.split(command)
    return {
        "argv": [sys.executable if cmd[0] in ("python", "python3") else cmd[0], *cmd[1:]],
        "env": dict(kv.split("=", 1) for kv in env),
    }
