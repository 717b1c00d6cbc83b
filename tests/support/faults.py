"""Fault-injection harness: a 3-broker Apache Kafka cluster, the four sector services and the
aggregator(s) as real processes, a load driver that talks to the services over HTTP like
sector systems do, and the end-of-scenario verification.

The load driver records every answer per event: ``accepted`` (durable), ``rejected``
(invalid, never counted), ``unavailable`` (503: retried later with the same id until
accepted), or a transport error / other HTTP status (the whole request is retried). The
verification then reads the sector topics to their end and checks, against that ledger:

* every accepted event is in Kafka; nothing is there that was not sent, or that was rejected;
* an event answered ``accepted`` at every attempt is in Kafka exactly as often as it was
  accepted; an event refused at some attempt (503, or a connection cut) may have a second
  copy - the broker may have appended it without the answer reaching the service - but
  never more copies than attempts;
* the aggregator catches up (its stored offsets equal the log ends), and every counter row in
  PostgreSQL equals the ground truth computed in memory from the accepted events (taken in
  Kafka order, first copy of each (source, id)) - so every accepted event is counted once;
* no rejected event left a deduplication key; the dead-letter topic is empty;
* every event answered 503 was retried and accepted in the end; nothing is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import secrets
import subprocess
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from infra.apache_kafka.launcher import KafkaCluster, KafkaNode, ensure_classpath
from infra.apache_kafka.launcher import KafkaError as LauncherError
from infra.embedded import EmbeddedPostgres
from infra.migrate import migrate, reference_units
from infra.processes import free_port
from infra.topics import provision_topics
from schemas.sectors import INGEST_SECTORS, SECTORS, sector_of
from schemas.topics import deadletter_topic, sector_topic
from services.aggregator.domain.decode import event_key
from services.core.units import UnitRegistry
from services.runtime.auth import create_key
from services.runtime.settings import KafkaSettings
from services.simulator.generator import SectorSystems
from tests.support.oracle import diff, expected_counters, stored_counters
from tests.support.procs import ServiceProcess, service_env
from tests.support.waiting import eventually

UNITS = reference_units()
REGISTRY = UnitRegistry.from_units(UNITS)
START = dt.datetime(2025, 5, 5, tzinfo=dt.UTC)  # the reference units are valid in May 2025
BATCH = "application/cloudevents-batch+json"
SECTOR_NAMES = tuple(s.value for s in INGEST_SECTORS)  # the sectors with an ingestion service

# Failover in seconds rather than the 9 s default: a SIGKILLed broker is fenced (and its
# partitions get new leaders) after broker.session.timeout.ms; a SIGSTOPped one leaves the
# ISR of the partitions it follows after replica.lag.time.max.ms (30 s by default, which
# would stall acks=all writes for the whole pause).
KAFKA_CONFIG = {
    "broker.session.timeout.ms": "4000",
    "broker.heartbeat.interval.ms": "1000",
    "replica.lag.time.max.ms": "8000",
}
# How long a sector service waits for acks=all before answering 503 (default 8 s).
DELIVERY_TIMEOUT_MS = 5000


# --------------------------------------------------------------------------- servers


def start_cluster(data_dir: Path) -> KafkaCluster:
    """A 3-node KRaft cluster (replication factor 3, min ISR 2) on free ports.

    Call from the main thread: each JVM dies with the thread that started it."""
    ensure_classpath()
    cluster = KafkaCluster(data_dir, nodes=3, extra_config=KAFKA_CONFIG)
    cluster.start()
    try:
        cluster.wait_ready(timeout=180)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def heal_cluster(cluster: KafkaCluster, timeout_s: float = 180) -> None:
    """Undo whatever a previous scenario left: resume paused nodes, start stopped ones, and
    wait until every node lists all three brokers. Main thread only (starts JVMs)."""
    for node in cluster.nodes:
        node.resume()
        if not node.is_running():
            node.start()
    deadline = time.monotonic() + timeout_s
    for node in cluster.nodes:
        node.wait_ready(max(1.0, deadline - time.monotonic()), expected_brokers=3)


async def wait_node_ready(node: KafkaNode, timeout_s: float = 180) -> None:
    await asyncio.to_thread(node.wait_ready, timeout_s, 3)


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    postgres = EmbeddedPostgres(data_dir / "pg", free_port(), data_dir / "postgres.log", durable=False)
    postgres.start(timeout_s=60)
    return postgres


async def create_database(admin_dsn: str) -> str:
    name = f"f_{secrets.token_hex(5)}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = f"{admin_dsn.rpartition('/')[0]}/{name}"
    await migrate(dsn)
    return dsn


# --------------------------------------------------------------------------- the rig


@dataclass
class Rig:
    """One scenario's system: own topics (prefix), database, consumer group, keys and
    processes, on the module's shared cluster and PostgreSQL server."""

    cluster: KafkaCluster
    postgres: EmbeddedPostgres
    dsn: str
    prefix: str
    log_dir: Path
    keys: dict[str, str] = field(default_factory=dict)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    aggregators: list[ServiceProcess] = field(default_factory=list)
    drivers: list[LoadDriver] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap  # all three brokers

    @property
    def group(self) -> str:
        return f"agg-{self.prefix.rstrip('.')}"

    @property
    def urls(self) -> dict[str, str]:
        return {sector: service.url for sector, service in self.services.items()}

    @classmethod
    async def create(
        cls, cluster: KafkaCluster, postgres: EmbeddedPostgres, log_dir: Path, aggregators: int = 1
    ) -> Rig:
        dsn = await create_database(postgres.dsn)
        prefix = f"f{secrets.token_hex(4)}."
        settings = KafkaSettings(bootstrap_servers=cluster.bootstrap, topic_prefix=prefix, replication_factor=3)
        await asyncio.to_thread(provision_topics, settings)
        rig = cls(cluster, postgres, dsn, prefix, log_dir)
        conn = await asyncpg.connect(dsn)
        try:
            for sector in SECTOR_NAMES:
                rig.keys[sector] = (await create_key(conn, kind="ingest", label=f"faults:{sector}", sector=sector)).key
        finally:
            await conn.close()
        base = service_env(rig.bootstrap, dsn, prefix, LOG_JSON="false")
        for sector in SECTOR_NAMES:
            env = dict(base, **{f"{sector.upper()}_DELIVERY_TIMEOUT_MS": str(DELIVERY_TIMEOUT_MS)})
            rig.services[sector] = ServiceProcess(f"services.{sector}", env, f"{sector.upper()}_PORT", log_dir)
        for _ in range(aggregators):
            env = dict(base, AGGREGATOR_GROUP_ID=rig.group, AGGREGATOR_BATCH_MAX_RECORDS="5000")
            rig.aggregators.append(ServiceProcess("services.aggregator", env, "AGGREGATOR_PORT", log_dir))
        processes = rig.processes()
        for process in processes:  # spawned from this (the main) thread: PDEATHSIG is tied to it
            process.start(wait_ready=False)
        try:
            await asyncio.gather(*(asyncio.to_thread(p.wait_ready, 120) for p in processes))
        except BaseException:
            rig.stop()
            raise
        return rig

    def driver(self, seed: int, rate: float) -> LoadDriver:
        """A started load driver on this rig's services (aborted with the rig)."""
        driver = LoadDriver(self.urls, self.keys, seed=seed, rate=rate)
        self.drivers.append(driver)
        driver.start()
        return driver

    async def close(self) -> None:
        """Abort the drivers (a scenario that failed leaves them running), stop the processes."""
        for driver in self.drivers:
            await driver.abort()
        self.stop()

    def processes(self) -> list[ServiceProcess]:
        return [*self.services.values(), *self.aggregators]

    async def restart(self, process: ServiceProcess) -> None:
        """SIGKILL (crash) and start again on the same port."""
        process.kill()
        process.start(wait_ready=False)
        await asyncio.to_thread(process.wait_ready, 120)

    def stop(self) -> None:
        for process in self.processes():
            with contextlib.suppress(Exception):
                process.stop()

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log_tail(lines)}" for p in self.processes())


# --------------------------------------------------------------------------- events


def simulator(seed: int) -> SectorSystems:
    # 1 % duplicate deliveries (same source and id sent twice) and 2 % late events, as sector
    # systems produce them; ~20 000 events per simulated hour.
    return SectorSystems(UNITS, START, seed=seed, events_per_hour=20_000, duplicate_rate=0.01, late_rate=0.02)


_VALID_BASE: dict[str, tuple[str, dict[str, Any]]] = {
    "education": ("vn.gov.thanhhoa.education.elearning.session_completed", {"minutes": 12.5}),
    "health": ("vn.gov.thanhhoa.health.visit.closed", {"emr": True}),
    "transport": ("vn.gov.thanhhoa.transport.fare.tapped", {"route_id": "R390-01", "payment": "cash"}),
    "culture": ("vn.gov.thanhhoa.culture.library.loan_recorded", {"format": "physical"}),
}

_WRONG_DATA: dict[str, tuple[str, Any]] = {
    "education": ("minutes", "12"),
    "health": ("emr", "yes"),
    "transport": ("payment", 1),
    "culture": ("format", True),
}


def invalid_event(n: int, sector: str) -> dict[str, Any]:
    """A deliberately invalid event for ``sector``'s service: it must be answered
    ``rejected`` and never counted. Six kinds, in turn."""
    type_, data = _VALID_BASE[sector]
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"invalid-{n}",
        "source": f"/faults/invalid/{sector}",
        "type": type_,
        "time": "2025-05-05T09:00:00+07:00",
        "unit": "390",
        "data": dict(data),
    }
    kind = n % 6
    if kind == 0:
        event["unit"] = "99999"  # no such administrative unit
    elif kind == 1:
        event["time"] = "2026-01-01T09:00:00+07:00"  # unit 390 no longer exists then
    elif kind == 2:
        event["citizen_name"] = "Nguyen Van A"  # the envelope is closed
    elif kind == 3:
        name, wrong = _WRONG_DATA[sector]
        event["data"][name] = wrong  # "12" is not a number, "yes" not a boolean
    elif kind == 4:
        other = SECTOR_NAMES[(SECTOR_NAMES.index(sector) + 1) % 4]
        event["type"] = _VALID_BASE[other][0]  # another sector's event type
    else:
        del event["time"]  # a required attribute missing
    return event


# --------------------------------------------------------------------------- the load driver

Key = tuple[str, str]  # (source, id)


def key_of(event: dict[str, Any]) -> Key:
    return (str(event.get("source")), str(event.get("id")))


@dataclass
class Entry:
    event: dict[str, Any]
    invalid: bool
    deliveries: int = 0  # how often the event was handed to the driver (simulator duplicates: 2)
    statuses: list[str] = field(default_factory=list)  # one per attempt, in order

    @property
    def accepted(self) -> int:
        return self.statuses.count("accepted")

    @property
    def attempts(self) -> int:
        return len(self.statuses)

    @property
    def refused(self) -> bool:
        """Some attempt got neither 'accepted' nor 'rejected': the broker may still hold a copy."""
        return any(s not in ("accepted", "rejected") for s in self.statuses)


@dataclass(frozen=True)
class Answer:
    """One HTTP request and how it was answered."""

    sector: str
    sent: float  # time.monotonic()
    answered: float
    status: int | None  # None: transport error (connection refused or cut)
    accepted: int
    unavailable: int
    rejected: int


@dataclass
class _Delivery:
    event: dict[str, Any]
    due: float = 0.0


class LoadDriver:
    """Sends simulator events (plus a few invalid ones) through the four services in
    batches, at ``rate`` new events per second, and retries what was not answered
    ``accepted`` or ``rejected`` until it is."""

    def __init__(
        self,
        urls: dict[str, str],
        keys: dict[str, str],
        *,
        seed: int,
        rate: float,
        batch_size: int = 200,
        invalid_every: int = 250,
        retry_after_s: float = 1.0,
    ) -> None:
        self.urls = urls
        self.keys = keys
        self.rate = rate
        self.batch_size = batch_size
        self.invalid_every = invalid_every
        self.retry_after_s = retry_after_s
        self.sim = simulator(seed)
        self._buffer: deque[dict[str, Any]] = deque()
        self.ledger: dict[Key, Entry] = {}
        self.answers: list[Answer] = []
        self.anomalies: list[str] = []
        self.accepted_events = 0  # accepted answers (per attempt)
        self.generated = 0
        self._queues: dict[str, deque[_Delivery]] = {s: deque() for s in SECTOR_NAMES}
        self._retries: dict[str, list[_Delivery]] = {s: [] for s in SECTOR_NAMES}
        self._open = 0  # deliveries not yet accepted or rejected
        self._invalid_ids = itertools.count()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=8))
        self.started_at = 0.0

    # -- lifecycle
    def start(self) -> None:
        self.started_at = time.monotonic()
        self._tasks = [asyncio.create_task(self._generate(), name="generate")]
        self._tasks += [asyncio.create_task(self._sector_loop(s), name=f"send-{s}") for s in SECTOR_NAMES]

    def stop_generating(self) -> None:
        self._closing = True

    async def abort(self) -> None:
        """Stop at once (a failed scenario): cancel the senders, close the client."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    async def drain(self, timeout_s: float = 240) -> None:
        """Stop taking new events; return once every event sent was accepted or rejected."""
        self.stop_generating()
        try:
            await eventually(
                self._progress,
                lambda p: p["open"] == 0 and all(t.done() for t in self._tasks),
                timeout_s=timeout_s,
                every_s=0.1,
                what="every event accepted or rejected",
            )
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._client.aclose()
        for task in self._tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _progress(self) -> dict[str, int]:
        for task in self._tasks:  # a crashed sender would otherwise look like slow progress
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return {"open": self._open, "accepted": self.accepted_events, "generated": self.generated}

    async def until_accepted(self, count: int, timeout_s: float = 120, what: str = "") -> None:
        """Wait until ``count`` accepted answers in all (progress, not time)."""
        await eventually(
            self._progress,
            lambda p: p["accepted"] >= count,
            timeout_s=timeout_s,
            every_s=0.05,
            what=what or f"{count} events accepted",
        )

    # -- generation
    def _next_event(self) -> dict[str, Any]:
        if not self._buffer:
            self._buffer.extend(self.sim.take(2000))
        return self._buffer.popleft()

    def _enqueue(self, event: dict[str, Any], invalid: bool) -> None:
        sector = sector_of(event["type"]) if not invalid else None
        name = sector.value if sector is not None else event["source"].rsplit("/", 1)[-1]
        entry = self.ledger.get(key_of(event))
        if entry is None:
            entry = self.ledger[key_of(event)] = Entry(event, invalid)
        entry.deliveries += 1
        self._queues[name].append(_Delivery(event))
        self._open += 1

    async def _generate(self) -> None:
        while not self._closing:
            due = int((time.monotonic() - self.started_at) * self.rate)
            while self.generated < due and not self._closing:
                self._enqueue(self._next_event(), invalid=False)
                self.generated += 1
                if self.generated % self.invalid_every == 0:
                    n = next(self._invalid_ids)
                    self._enqueue(invalid_event(n, SECTOR_NAMES[n % 4]), invalid=True)
            await asyncio.sleep(0.02)

    # -- sending
    async def _sector_loop(self, sector: str) -> None:
        queue, retries = self._queues[sector], self._retries[sector]
        while True:
            now = time.monotonic()
            batch: list[_Delivery] = []
            if retries:
                ready = [d for d in retries if d.due <= now][: self.batch_size]
                if ready:
                    chosen = {id(d) for d in ready}
                    retries[:] = [d for d in retries if id(d) not in chosen]
                    batch += ready
            while queue and len(batch) < self.batch_size:
                batch.append(queue.popleft())
            if not batch:
                if self._closing and not queue and not retries:
                    return
                await asyncio.sleep(0.02)
                continue
            await self._post(sector, batch)

    def _record(self, delivery: _Delivery, status: str) -> bool:
        """Record one attempt's outcome; True when the delivery is finished."""
        entry = self.ledger[key_of(delivery.event)]
        entry.statuses.append(status)
        if status == "accepted":
            self.accepted_events += 1
            if entry.invalid:
                self.anomalies.append(f"invalid event accepted: {delivery.event}")
            return True
        if status == "rejected":
            if not entry.invalid:
                self.anomalies.append(f"valid event rejected: {key_of(delivery.event)}")
            return True
        return False

    async def _post(self, sector: str, batch: list[_Delivery]) -> None:
        events = [d.event for d in batch]
        sent = time.monotonic()
        status: int | None = None
        results: list[dict[str, Any]] | None = None
        try:
            response = await self._client.post(
                f"{self.urls[sector]}/v1/events",
                content=orjson.dumps(events),
                headers={"content-type": BATCH, "authorization": f"Bearer {self.keys[sector]}"},
            )
            status = response.status_code
            if status in (200, 503):
                body = orjson.loads(response.content)
                results = body.get("results") if isinstance(body, dict) else None
            if status == 503 and "retry-after" not in response.headers:
                self.anomalies.append(f"503 without Retry-After from {sector}")
            if status == 200 and results is None:
                self.anomalies.append(f"{sector} answered 200 without results: {response.text[:300]}")
            if status not in (200, 429, 503):
                self.anomalies.append(f"{sector} answered {status}: {response.text[:300]}")
        except httpx.HTTPError as exc:  # the service process is down, or died mid-request
            outcome = f"error:{type(exc).__name__}"
        answered = time.monotonic()
        counts: Counter[str] = Counter()
        retry: list[_Delivery] = []
        if results is not None:
            if [r.get("id") for r in results] != [e.get("id") for e in events]:
                self.anomalies.append(f"{sector}: results do not match the batch")
            for delivery, result in zip(batch, results, strict=False):
                counts[result["status"]] += 1
                if self._record(delivery, result["status"]):
                    self._open -= 1
                else:
                    retry.append(delivery)
        else:  # refused as a whole (503 without results, 429, a crash): nothing accepted
            outcome = f"http:{status}" if status is not None else outcome
            for delivery in batch:
                self._record(delivery, outcome)
            retry = batch
            counts["unavailable"] = len(batch)
        self.answers.append(
            Answer(sector, sent, answered, status, counts["accepted"], counts["unavailable"], counts["rejected"])
        )
        for delivery in retry:
            delivery.due = answered + self.retry_after_s
        self._retries[sector].extend(retry)

    # -- what happened
    def answers_between(self, sent_after: float, answered_before: float) -> list[Answer]:
        return [a for a in self.answers if a.sent >= sent_after and a.answered <= answered_before]

    def summary(self) -> dict[str, Any]:
        statuses = Counter(s for e in self.ledger.values() for s in e.statuses)
        return {
            "events": sum(1 for e in self.ledger.values() if not e.invalid),
            "invalid": sum(1 for e in self.ledger.values() if e.invalid),
            "requests": len(self.answers),
            "http": dict(Counter(str(a.status) for a in self.answers)),
            "attempt_outcomes": dict(statuses),
            "retried_events": sum(1 for e in self.ledger.values() if e.refused),
            "seconds": round(time.monotonic() - self.started_at, 1),
        }


# --------------------------------------------------------------------------- reading Kafka


@dataclass
class TopicContents:
    keys: dict[tuple[str, int], list[Key]]  # (topic, partition) → (source, id) in offset order
    ends: dict[tuple[str, int], int]  # next offset of every partition holding records

    def copies(self) -> Counter[Key]:
        return Counter(k for keys in self.keys.values() for k in keys)

    def first_copies(self) -> list[Key]:
        """Distinct keys in the order the aggregator counts them: per partition, by offset."""
        seen: set[Key] = set()
        out = []
        for tp in sorted(self.keys):
            for key in self.keys[tp]:
                if key not in seen:
                    seen.add(key)
                    out.append(key)
        return out


def read_topics(bootstrap: str, topics: list[str], timeout_s: float = 120) -> TopicContents:
    """Every record of ``topics``, read from the start of each partition to its high
    watermark (end-of-partition events; no consumer group offsets)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "faults-reader-" + secrets.token_hex(3),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.max.bytes": 52_428_800,
        }
    )
    keys: dict[tuple[str, int], list[Key]] = defaultdict(list)
    ends: dict[tuple[str, int], int] = {}
    try:
        assignment = []
        for topic in topics:
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        consumer.assign(assignment)
        at_end: set[tuple[str, int]] = set()
        deadline = time.monotonic() + timeout_s
        while len(at_end) < len(assignment):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topics} to the end ({len(at_end)}/{len(assignment)} partitions)")
            for message in consumer.consume(10_000, 0.5):
                tp = (message.topic(), message.partition())
                error = message.error()
                if error is None:
                    headers = dict(message.headers() or [])
                    keys[tp].append((headers["ce_source"].decode(), headers["ce_id"].decode()))
                    ends[tp] = message.offset() + 1
                    at_end.discard(tp)
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(tp)
                else:
                    raise RuntimeError(f"reading {tp}: {error}")
        return TopicContents(dict(keys), ends)
    finally:
        consumer.close()


async def committed_offsets(dsn: str, group: str) -> dict[tuple[str, int], int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = $1", group
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
    finally:
        await conn.close()


# --------------------------------------------------------------------------- verification

STALE_LIMIT = 20


async def metric(process: ServiceProcess, name: str) -> float:
    """A Prometheus counter/gauge without labels from a process's /metrics (0 if absent)."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"{process.url}/metrics")).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return 0.0


@dataclass
class Verdict:
    kafka_records: int
    distinct_events: int
    retry_copies: int  # records beyond the accepted answers: refused attempts the broker kept
    counter_rows: int
    catch_up_s: float


async def settle_and_verify(rig: Rig, driver: LoadDriver, *, drain_timeout_s: float = 240) -> Verdict:
    """Wait for the driver to finish and the aggregator to catch up; check everything the
    module docstring lists. Raises AssertionError with the evidence."""
    try:
        await driver.drain(drain_timeout_s)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n{driver.summary()}\nanomalies: {driver.anomalies[:10]}\n{rig.log_tails()}"
        ) from None
    assert not driver.anomalies, "anomalies:\n" + "\n".join(driver.anomalies[:20])
    ledger = driver.ledger
    unfinished = [k for k, e in ledger.items() if not e.accepted and "rejected" not in e.statuses]
    assert not unfinished, f"{len(unfinished)} events neither accepted nor rejected, e.g. {unfinished[:5]}"
    # every event refused with 503 (or a cut connection) was retried until accepted
    refused_valid = [e for e in ledger.values() if e.refused and not e.invalid]
    assert all(e.accepted >= 1 for e in refused_valid), "an event answered 503 was never accepted"
    invalid = [e for e in ledger.values() if e.invalid]
    assert all(e.statuses[-1] == "rejected" and e.accepted == 0 for e in invalid)

    # Read the sector topics until the aggregator's stored offsets equal the log ends. Read
    # again each round: a partition leader elected during a fault may expose its high
    # watermark a moment late.
    topics = [sector_topic(s, rig.prefix) for s in SECTORS]
    began = time.monotonic()

    async def probe() -> tuple[TopicContents, dict[tuple[str, int], int]]:
        if len(rig.aggregators) == 1:
            # With one aggregator nobody else can take a partition over: a stale batch or
            # two after a rebalance of the same member is normal, a stream of them is not.
            stale = await metric(rig.aggregators[0], "aggregator_stale_batches_total")
            assert stale <= STALE_LIMIT, (
                f"the only aggregator dropped {stale:.0f} batches as 'partition taken over': it is "
                f"stuck (its offsets in memory and in PostgreSQL differ)\n{rig.aggregators[0].log_tail(8)}"
            )
        contents = await asyncio.to_thread(read_topics, rig.bootstrap, topics)
        return contents, await committed_offsets(rig.dsn, rig.group)

    def caught_up(state: tuple[TopicContents, dict[tuple[str, int], int]]) -> bool:
        contents, done = state
        return all(contents.ends.get(tp, 0) == done.get(tp, 0) for tp in set(contents.ends) | set(done))

    try:
        contents, _ = await eventually(
            probe, caught_up, timeout_s=240, every_s=1.0, what="aggregator caught up with the log ends"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rig.log_tails()}") from None
    catch_up_s = time.monotonic() - began

    # Kafka holds exactly what was accepted (durability, no strangers), with second copies
    # only where an attempt was refused (possibly persisted), never more than attempts.
    copies = contents.copies()
    accepted = {k for k, e in ledger.items() if e.accepted}
    missing = accepted - set(copies)
    assert not missing, f"{len(missing)} accepted events are not in Kafka (lost), e.g. {sorted(missing)[:5]}"
    strangers = [k for k in copies if k not in ledger or ledger[k].invalid or not ledger[k].accepted]
    assert not strangers, f"records in Kafka that were never accepted: {strangers[:5]}"
    wrong = {
        k: (n, ledger[k].statuses)
        for k, n in copies.items()
        if n < ledger[k].accepted
        or n > ledger[k].attempts - ledger[k].statuses.count("rejected")
        or (not ledger[k].refused and n != ledger[k].accepted)
    }
    assert not wrong, f"copies in Kafka do not match the answers: {list(wrong.items())[:5]}"

    # The counters equal the ground truth of the accepted events, first copy in Kafka order.
    ordered = [ledger[k].event for k in contents.first_copies()]
    expected = expected_counters(ordered, REGISTRY)
    stored = await stored_counters(rig.dsn)
    problems = diff(expected, stored)
    assert not problems, "counters differ from ground truth:\n" + "\n".join(problems)
    assert len(stored) == len(expected)

    # Nothing rejected was counted: no deduplication key of an invalid event; one key per
    # distinct accepted event; no dead letter (the services let nothing undecodable through).
    conn = await asyncpg.connect(rig.dsn)
    try:
        keys = await conn.fetchval("SELECT count(*) FROM seen_events")
        bad = await conn.fetchval(
            "SELECT count(*) FROM seen_events WHERE event_key = ANY($1::bytea[])",
            [event_key(*key_of(e.event)) for e in invalid],
        )
    finally:
        await conn.close()
    assert bad == 0, f"{bad} rejected events were counted"
    assert keys == len(accepted), (keys, len(accepted))
    dead = await asyncio.to_thread(read_topics, rig.bootstrap, [deadletter_topic(rig.prefix)])
    assert not dead.ends, f"dead letters: {sum(dead.ends.values())}"
    return Verdict(
        kafka_records=sum(copies.values()),
        distinct_events=len(copies),
        retry_copies=sum(n - ledger[k].accepted for k, n in copies.items()),
        counter_rows=len(stored),
        catch_up_s=round(catch_up_s, 1),
    )


async def controller_of(cluster: KafkaCluster, timeout_s: float = 90) -> int:
    """The active controller's node id, once the running nodes have elected one."""

    async def probe() -> int:
        try:
            return await asyncio.to_thread(cluster.active_controller_id)
        except (LauncherError, subprocess.TimeoutExpired):  # no leader yet: an election is running
            return -1

    return await eventually(probe, lambda leader: leader > 0, timeout_s=timeout_s, every_s=0.5, what="a controller")


def other_node(cluster: KafkaCluster, *exclude: int) -> KafkaNode:
    return next(n for n in cluster.nodes if n.node_id not in exclude)
