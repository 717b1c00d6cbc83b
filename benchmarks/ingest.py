"""Ingest throughput and latency of one sector service, against the raw Kafka producer.

``python -m benchmarks.ingest`` starts the embedded Tansu broker and PostgreSQL (or uses
``--bootstrap`` / ``--database-url``), migrates a fresh database, provisions topics under a
fresh prefix, creates an ingest key and starts ONE sector service as a real process
(``python -m services.transport`` by default). Then, in the same run:

``baseline_events_per_s``
    The median of ``--baseline-runs`` runs of the raw confluent-kafka producer with the
    service's producer settings (those of ``DurableProducer``: idempotent, acks=all, linger
    5 ms, …) producing the very messages the service produces for these events - same key,
    value and headers, pre-encoded by the service's own ``prepare`` - to the same broker,
    then ``flush``. Each run writes to a topic of its own; the broker is the only other
    process busy then.
``durable_producer_events_per_s``
    The same messages through ``DurableProducer.publish`` (the service's publishing path
    without HTTP, validation and encoding), ``--batch`` messages per call, ``--connections``
    calls in flight: where the producer wrapper stands between the two.
``events_per_s``
    Batched mode (``application/cloudevents-batch+json``, ``--batch`` events per request)
    over ``--connections`` keep-alive connections from a separate client process. Only
    events the service answered ``accepted`` (acknowledged by the broker) count; wall time
    runs from the first request to the last response. The topic is checked afterwards: it
    holds exactly as many records as were accepted.
``single_p50_ms`` / ``single_p99_ms``
    ``--single`` single-event requests (structured mode), sent one after the other.

Progress goes to stderr; the last line of stdout is one JSON object.
"""

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import pickle
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from benchmarks.support import (
    Service,
    count_records,
    fresh_database,
    git_state,
    ingest_key,
    new_prefix,
    percentile,
    process_cpu_seconds,
    provision,
    say,
    scratch,
    sector_events,
    servers,
)

BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"
WARMUP_BATCHES = 5


# -- the client process ---------------------------------------------------------------------


async def _batched(url: str, key: str, bodies: list[bytes], connections: int) -> dict[str, Any]:
    import httpx

    headers = {"authorization": f"Bearer {key}", "content-type": BATCH}
    cursor = iter(range(len(bodies)))
    totals = {"accepted": 0, "rejected": 0, "unavailable": 0, "requests": 0, "failed_requests": 0}
    latencies: list[float] = []

    async def worker() -> None:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=1)) as client:
            for index in cursor:
                began = time.perf_counter()
                response = await client.post(url, content=bodies[index], headers=headers)
                latencies.append(time.perf_counter() - began)
                totals["requests"] += 1
                if response.status_code not in (200, 503):
                    totals["failed_requests"] += 1
                    continue
                body = orjson.loads(response.content)
                for outcome in ("accepted", "rejected", "unavailable"):
                    totals[outcome] += body.get(outcome, 0)

    first = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    last = time.monotonic()
    return {**totals, "seconds": last - first, "latencies": latencies}


def _single(url: str, key: str, bodies: list[bytes]) -> dict[str, Any]:
    import httpx

    headers = {"authorization": f"Bearer {key}", "content-type": STRUCTURED}
    latencies: list[float] = []
    accepted = 0
    with httpx.Client(timeout=30) as client:
        for body in bodies:
            began = time.perf_counter()
            response = client.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - began)
            accepted += response.status_code == 202
    return {"accepted": accepted, "latencies": latencies}


def client_process(pipe: Connection, url: str, key: str, data_path: str, connections: int) -> None:
    """Runs in its own process: warm up, then batched phase, then single-event phase, each
    on the parent's signal (so the parent can read CPU counters around each phase)."""
    with open(data_path, "rb") as handle:
        data = pickle.load(handle)
    warm = asyncio.run(_batched(url, key, data["warmup"], connections=1))
    pipe.send(("warm", {k: v for k, v in warm.items() if k != "latencies"}))
    assert pipe.recv() == "batched"
    pipe.send(("batched", asyncio.run(_batched(url, key, data["batches"], connections))))
    assert pipe.recv() == "single"
    pipe.send(("single", _single(url, key, data["singles"])))


# -- baselines in this process ----------------------------------------------------------------


def raw_producer_run(conf: dict[str, Any], messages: list[Any], warmup: int = 100) -> float:
    """Seconds to produce every message and flush, with the plain confluent-kafka producer.

    The first ``warmup`` messages are produced and flushed once before the clock starts (the
    connection and the idempotent producer id are set up then), so the topic ends up with
    ``len(messages) + warmup`` records.
    """
    from confluent_kafka import Producer

    errors: list[Any] = []
    # Delivery reports for failures only: no per-message Python callback on the fast path.
    producer = Producer(
        {**conf, "delivery.report.only.error": True, "on_delivery": lambda err, _msg: errors.append(err)}
    )
    produce = producer.produce

    def produce_all(batch: list[Any]) -> None:
        for n, message in enumerate(batch):
            while True:
                try:
                    produce(message.topic, value=message.value, key=message.key, headers=message.headers)
                    break
                except BufferError:
                    producer.poll(0.005)
            if n % 5000 == 0:
                producer.poll(0)

    produce_all(messages[:warmup])
    producer.flush(60)
    began = time.monotonic()
    produce_all(messages)
    left = producer.flush(120)
    seconds = time.monotonic() - began
    if left or errors:
        raise RuntimeError(f"raw producer: {left} messages left, {len(errors)} failed, e.g. {errors[:3]}")
    return seconds


async def durable_producer_run(settings: Any, messages: list[Any], batch: int, concurrency: int) -> tuple[float, int]:
    """Seconds to publish every message through DurableProducer, and how many failed."""
    from services.runtime.kafka import DurableProducer

    producer = DurableProducer(settings, client_id="benchmark-durable")
    chunks = [messages[i : i + batch] for i in range(0, len(messages), batch)]
    cursor = iter(chunks)
    failed = 0

    async def worker() -> None:
        nonlocal failed
        for chunk in cursor:
            errors = await producer.publish(chunk)
            failed += sum(1 for e in errors if e is not None)

    try:
        await producer.publish(chunks[0][:10])  # connect and get a producer id first
        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.monotonic() - began, failed
    finally:
        await asyncio.to_thread(producer.close)


def prepared_messages(events: list[dict[str, Any]], sector: str, topic: str) -> list[Any]:
    """Kafka messages exactly as the service builds them (``services.ingest.pipeline``)."""
    from infra.migrate import reference_registry
    from schemas.sectors import Sector
    from services.ingest.pipeline import Prepared, prepare
    from services.runtime.auth import Principal

    registry = reference_registry()
    principal = Principal(key_id="bench", kind="ingest", label="bench", sector=sector)
    outcomes = prepare(events, sector=Sector(sector), registry=registry, principal=principal, topic=topic)
    rejected = [o for o in outcomes if not isinstance(o, Prepared)]
    if rejected:
        raise RuntimeError(f"{len(rejected)} simulator events are invalid, e.g. {rejected[0]}")
    return [o.message for o in outcomes]  # type: ignore[union-attr]


# -- the run --------------------------------------------------------------------------------


_PROFILED = """
import cProfile, runpy, signal, sys
profile = cProfile.Profile()
def dump(*_):
    profile.disable()
    profile.dump_stats({out!r})
    sys.exit(0)
# uvicorn restores this handler after its graceful shutdown and re-raises SIGTERM to it.
signal.signal(signal.SIGTERM, dump)
sys.argv = ["{module}"]
profile.enable()
runpy.run_module("{module}", run_name="__main__")
dump()
"""


def profiled(sector: str, out: Path) -> list[str]:
    """The service's command line under cProfile (main thread: the event loop), dumping the
    stats to ``out`` when it stops."""
    return [sys.executable, "-c", _PROFILED.format(out=str(out.resolve()), module=f"services.{sector}")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300_000, help="events in the batched phase")
    parser.add_argument("--batch", type=int, default=1000, help="events per batched request")
    parser.add_argument("--connections", type=int, default=4, help="concurrent client connections")
    parser.add_argument("--single", type=int, default=2000, help="sequential single-event requests")
    parser.add_argument("--sector", default="transport", choices=["education", "health", "transport", "culture"])
    parser.add_argument("--seed", type=int, default=20250505)
    parser.add_argument("--bootstrap", default=None, help="external Kafka (default: embedded Tansu)")
    parser.add_argument(
        "--broker-kind", default="external", help="what --bootstrap is, for the report (e.g. apache-kafka)"
    )
    parser.add_argument("--database-url", default=None, help="external PostgreSQL admin DSN (default: embedded)")
    parser.add_argument(
        "--profile-out",
        default=None,
        help="run the service under cProfile and write its stats here (slows the service: numbers are not comparable)",
    )
    parser.add_argument("--baseline-runs", type=int, default=3, help="raw producer runs; the median is the baseline")
    parser.add_argument("--skip-durable", action="store_true", help="skip the DurableProducer run")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import structlog

    # Library logs (servers, migrations, topics) go to stderr: stdout is for the result.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    if args.batch < 1 or args.events < args.batch:
        raise SystemExit("--events must be at least --batch")
    from schemas.topics import sector_topic
    from services.runtime.kafka import DurableProducer
    from services.runtime.settings import KafkaSettings

    load_before = round(os.getloadavg()[0], 2)  # other work on the machine skews the numbers
    with scratch(args.keep) as workdir, servers(workdir, args.bootstrap, args.database_url) as srv:
        broker = "tansu" if srv.broker == "tansu" else args.broker_kind
        say(f"broker {broker} at {srv.bootstrap}; PostgreSQL at {srv.admin_dsn}")
        database = f"bench_{os.getpid()}_{int(time.time())}"
        dsn = asyncio.run(fresh_database(srv.admin_dsn, database))
        key = asyncio.run(ingest_key(dsn, args.sector))
        prefix, base_prefix, durable_prefix = new_prefix("svc"), new_prefix("raw"), new_prefix("dur")
        for p in (prefix, base_prefix, durable_prefix):
            provision(srv.bootstrap, p)
        topic = sector_topic(args.sector, prefix)

        warm_n = WARMUP_BATCHES * args.batch
        say(f"generating {warm_n + args.events + args.single} {args.sector} events")
        events = sector_events(args.sector, warm_n + args.events + args.single, args.seed)
        warmup, measured, singles = (
            events[:warm_n],
            events[warm_n : warm_n + args.events],
            events[warm_n + args.events :],
        )
        batches = [orjson.dumps(measured[i : i + args.batch]) for i in range(0, len(measured), args.batch)]
        data_path = workdir / "client-data.pickle"
        with open(data_path, "wb") as handle:
            pickle.dump(
                {
                    "warmup": [orjson.dumps(warmup[i : i + args.batch]) for i in range(0, warm_n, args.batch)],
                    "batches": batches,
                    "singles": [orjson.dumps(e) for e in singles],
                },
                handle,
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        body_bytes = sum(len(b) for b in batches)
        say(f"{len(batches)} batch bodies, {body_bytes / len(measured):.0f} bytes/event")

        # Baselines first, while nothing else runs: the raw producer, then DurableProducer.
        say("encoding the service's Kafka messages for the baselines")
        messages = prepared_messages(measured, args.sector, sector_topic(args.sector, base_prefix))
        kafka = KafkaSettings(bootstrap_servers=srv.bootstrap)
        probe = DurableProducer(kafka, client_id="benchmark-raw")
        conf = dict(probe._conf)  # exactly the service's producer configuration
        probe.close()
        del probe
        baseline_runs = []
        for run in range(args.baseline_runs):
            raw_topic = sector_topic(args.sector, base_prefix)
            if run:
                raw_prefix = new_prefix(f"raw{run}")
                provision(srv.bootstrap, raw_prefix)
                raw_topic = sector_topic(args.sector, raw_prefix)
            raw_messages = [dataclasses.replace(m, topic=raw_topic) for m in messages]
            base_seconds = raw_producer_run(conf, raw_messages)
            stored = count_records(srv.bootstrap, raw_topic)
            if stored != len(messages) + 100:
                raise RuntimeError(f"raw producer: topic holds {stored} records, not {len(messages) + 100}")
            baseline_runs.append(len(messages) / base_seconds)
            say(f"raw producer run {run + 1}: {baseline_runs[-1]:,.0f} events/s ({base_seconds:.2f}s)")
        baseline = statistics.median(baseline_runs)
        durable = None
        if not args.skip_durable:
            durable_topic = sector_topic(args.sector, durable_prefix)
            dur_seconds, failed = asyncio.run(
                durable_producer_run(
                    kafka, [dataclasses.replace(m, topic=durable_topic) for m in messages], args.batch, args.connections
                )
            )
            if failed:
                raise RuntimeError(f"DurableProducer: {failed} messages failed")
            durable = len(messages) / dur_seconds
            say(f"DurableProducer.publish: {durable:,.0f} events/s ({dur_seconds:.2f}s)")
        del messages

        service = Service(args.sector, srv.bootstrap, dsn, prefix, workdir)
        service_argv = profiled(args.sector, Path(args.profile_out)) if args.profile_out else None
        say(f"starting the {args.sector} service")
        service.start(argv=service_argv)
        try:
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            client = ctx.Process(
                target=client_process,
                name="bench-client",
                args=(child, f"{service.url}/v1/events", key, str(data_path), args.connections),
            )
            client.start()
            tag, warm = parent.recv()
            assert tag == "warm", tag
            if warm["accepted"] != warm_n:
                raise RuntimeError(f"warm-up: {warm} - service log:\n{service.log_tail()}")
            say(
                f"warm-up done; batched phase: {args.events} events, {args.batch}/request, "
                f"{args.connections} connections"
            )
            cpu_service, cpu_client = service.cpu_seconds(), process_cpu_seconds(client.pid)
            parent.send("batched")
            tag, batched = parent.recv()
            cpu_service = service.cpu_seconds() - cpu_service
            cpu_client = process_cpu_seconds(client.pid) - cpu_client
            events_per_s = batched["accepted"] / batched["seconds"]
            say(
                f"batched: {batched['accepted']} accepted, {batched['rejected']} rejected, "
                f"{batched['unavailable']} unavailable in {batched['seconds']:.2f}s = "
                f"{events_per_s:,.0f} events/s; service CPU {cpu_service:.1f}s, client CPU {cpu_client:.1f}s"
            )
            parent.send("single")
            tag, single = parent.recv()
            client.join(30)
            lat_ms = [x * 1000 for x in single["latencies"]]
            say(
                f"single: {single['accepted']}/{len(lat_ms)} accepted, p50 {percentile(lat_ms, 50):.2f} ms, "
                f"p99 {percentile(lat_ms, 99):.2f} ms"
            )
        finally:
            service.stop()
        stored = count_records(srv.bootstrap, topic)
        expected = warm["accepted"] + batched["accepted"] + single["accepted"]
        if stored != expected:
            raise RuntimeError(f"service topic holds {stored} records, but {expected} were accepted")
        batch_lat_ms = [x * 1000 for x in batched["latencies"]]
        result = {
            "benchmark": "ingest",
            "events_per_s": round(events_per_s),
            "baseline_events_per_s": round(baseline),
            "ratio": round(events_per_s / baseline, 3),
            "single_p50_ms": round(percentile(lat_ms, 50), 2),
            "single_p99_ms": round(percentile(lat_ms, 99), 2),
            "events": batched["accepted"],
            "batch_size": args.batch,
            "broker": broker,
            "sector": args.sector,
            "connections": args.connections,
            "seconds": round(batched["seconds"], 2),
            "rejected": batched["rejected"],
            "unavailable": batched["unavailable"],
            "failed_requests": batched["failed_requests"],
            "batch_p50_ms": round(percentile(batch_lat_ms, 50), 1),
            "batch_p99_ms": round(percentile(batch_lat_ms, 99), 1),
            "baseline_runs_events_per_s": [round(x) for x in baseline_runs],
            "durable_producer_events_per_s": round(durable) if durable else None,
            "service_cpu_s_per_1k_events": round(cpu_service / batched["accepted"] * 1000, 4),
            "service_cpu_utilisation": round(cpu_service / batched["seconds"], 2),
            "client_cpu_utilisation": round(cpu_client / batched["seconds"], 2),
            "bytes_per_event": round(body_bytes / len(measured)),
            "single_requests": len(lat_ms),
            "cpus": os.cpu_count(),
            "loadavg_1m_before": load_before,
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
            "profiled": bool(args.profile_out),
            **git_state(),
        }
        asyncio.run(_drop(srv.admin_dsn, database))
    print(json.dumps(result), flush=True)
    return result


async def _drop(admin_dsn: str, database: str) -> None:
    from benchmarks.support import drop_database

    await drop_database(admin_dsn, database)


if __name__ == "__main__":
    main()
