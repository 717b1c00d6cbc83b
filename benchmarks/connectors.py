"""Throughput of one connector process, against the same records produced raw.

``python -m benchmarks.connectors`` starts the embedded Tansu broker and PostgreSQL (or uses
``--bootstrap`` / ``--database-url``), migrates a fresh database, loads the starter mappings,
creates a connector key and starts ONE connector process (``python -m services.connectors``).
Then, in the same run:

``dossiers_per_s``
    ``--dossiers`` DVCQG dossiers (full snapshots of resolved dossiers: received, paid,
    resolved - three events each), ``--batch`` per request on the update URL, over
    ``--connections`` keep-alive connections. Only dossiers answered ``error_code`` 0
    (every derived event acknowledged by the broker, the dossier's facts stored) count.
``edxml_messages_per_s``
    ``--messages`` edXML new-document messages, one per request (as the document axis
    delivers them), each with a PDF carrying two signatures (organisation + personal) that
    the connector reads and verifies; an outgoing document to one receiving organ of the
    province: two events per message.
``baseline_dossiers_per_s`` / ``baseline_edxml_messages_per_s``
    The very records the connector wrote (read back from its topics: same keys, values and
    headers) produced again by the raw confluent-kafka producer with the connector's producer
    settings (idempotent, acks=all, linger 5 ms) to fresh topics, then flushed; expressed
    per dossier / message.

The client runs in this process (asyncio + httpx): on a 2-core machine it competes with the
connector for CPU, so the numbers are a floor. Progress goes to stderr; the last line of
stdout is one JSON object.
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from benchmarks.support import fresh_database, git_state, new_prefix, provision, say, scratch, servers
from services.connectors.adapters.mapping_store import load_directory
from services.runtime.auth import create_key
from tests.support.connectors_pdf import signed_pdf
from tests.support.connectors_samples import STARTER, dossier, edxml_document
from tests.support.connectors_stack import read_topic
from tests.support.procs import ServiceProcess, service_env

PRODUCER = {"enable.idempotence": True, "acks": "all", "linger.ms": 5, "batch.num.messages": 10_000}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dossiers", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="dossiers per request")
    parser.add_argument("--messages", type=int, default=2_000, help="edXML messages")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--bootstrap", default=None, help="an external broker (default: embedded Tansu)")
    parser.add_argument("--database-url", default=None, help="an external PostgreSQL (default: embedded)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs)")
    return parser.parse_args(argv)


def dossier_batches(count: int, batch: int) -> list[bytes]:
    records = [dossier(MaHoSo=f"000.20.30.H56-250312-B{n:07d}") for n in range(count)]
    return [orjson.dumps(records[i : i + batch]) for i in range(0, count, batch)]


def edxml_bodies(count: int) -> list[bytes]:
    pdf = signed_pdf("organisation", "personal")
    return [edxml_document(document_id=f"000.00.30.H56,2025/03/14,{n}/UBND-VP", pdf=pdf) for n in range(count)]


async def drive(url: str, key: str, bodies: list[bytes], content_type: str, connections: int) -> tuple[float, int]:
    """Seconds to send every body over ``connections`` connections, and how many records
    were accepted (DVCQG: results with error_code 0; edXML: accepted)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    accepted = 0
    headers = {"authorization": f"Bearer {key}", "content-type": content_type}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            body = queue.get_nowait()
            answer = (await client.post(url, content=body, headers=headers)).json()
            if "results" in answer and "error_code" in answer:
                accepted += sum(r["error_code"] == "0" for r in answer["results"])
            else:
                accepted += answer.get("accepted", 0)

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        began = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(connections)))
        return time.monotonic() - began, accepted


def raw_seconds(bootstrap: str, records: list[Any], topic_of: dict[str, str]) -> float:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER})
    first = records[0]  # connect and get a producer id before the clock starts (one extra record)
    producer.produce(topic_of[first.topic()], value=first.value(), key=first.key(), headers=first.headers())
    producer.flush(30)
    began = time.monotonic()
    for n, message in enumerate(records):
        while True:
            try:
                producer.produce(
                    topic_of[message.topic()], value=message.value(), key=message.key(), headers=message.headers()
                )
                break
            except BufferError:
                producer.poll(0.005)
        if n % 5000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"raw producer: {left} messages left")
    return time.monotonic() - began


async def setup(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        await load_directory(conn, STARTER)
        return (await create_key(conn, kind="connector", label="benchmark")).key
    finally:
        await conn.close()


def records_of(bootstrap: str, prefix: str, sector: str) -> list[Any]:
    return read_topic(bootstrap, f"{prefix}events.{sector}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    load_before = round(os.getloadavg()[0], 2)
    with scratch(args.keep) as workdir, servers(workdir, args.bootstrap, args.database_url) as srv:
        dsn = asyncio.run(fresh_database(srv.admin_dsn, f"bench_conn_{os.getpid()}_{int(time.time())}"))
        key = asyncio.run(setup(dsn))
        prefix, raw_prefix = new_prefix("conn"), new_prefix("connraw")
        for p in (prefix, raw_prefix):
            provision(srv.bootstrap, p)
        env = service_env(
            srv.bootstrap,
            dsn,
            prefix,
            LOG_LEVEL="WARNING",
            CONNECTORS_RATE_LIMIT_PER_S="1000000",
            CONNECTORS_RATE_LIMIT_BURST="1000000",
        )
        connector = ServiceProcess("services.connectors", env, "CONNECTORS_PORT", Path(workdir))
        connector.start()
        try:
            say("generating dossiers and signed edXML messages")
            batches = dossier_batches(args.dossiers, args.batch)
            warm = dossier_batches(200, args.batch)  # other dossier numbers are not reused: B vs W
            warm = [b.replace(b"-B", b"-W") for b in warm]
            bodies = edxml_bodies(args.messages)
            asyncio.run(drive(f"{connector.url}/v1/dvcqg/hoso/update", key, warm, "application/json", args.connections))
            say(f"sending {args.dossiers} dossiers in batches of {args.batch}")
            d_seconds, d_ok = asyncio.run(
                drive(f"{connector.url}/v1/dvcqg/hoso/update", key, batches, "application/json", args.connections)
            )
            say(f"sending {args.messages} edXML messages")
            e_seconds, e_ok = asyncio.run(
                drive(f"{connector.url}/v1/edxml", key, bodies, "application/xml", args.connections)
            )
        finally:
            connector.stop()
        say("baseline: the same records, produced raw")
        general = records_of(srv.bootstrap, prefix, "general")

        def header(record: Any, name: str) -> bytes:
            return dict(record.headers())[name]

        dossier_records = [r for r in general if b".dossier." in header(r, "ce_type") and b"-B" in header(r, "ce_id")]
        edxml_records = [r for r in general if b".document." in header(r, "ce_type")]
        topic = {f"{prefix}events.general": f"{raw_prefix}events.general"}
        raw_d = raw_seconds(srv.bootstrap, dossier_records, topic)
        raw_e = raw_seconds(srv.bootstrap, edxml_records, topic)
    result = {
        "benchmark": "connectors",
        "dossiers": args.dossiers,
        "dossiers_accepted": d_ok,
        "dossier_batch": args.batch,
        "dossier_events": len(dossier_records),
        "dossiers_per_s": round(d_ok / d_seconds, 1),
        "baseline_dossiers_per_s": round(args.dossiers / raw_d, 1),
        "edxml_messages": args.messages,
        "edxml_accepted": e_ok,
        "edxml_events": len(edxml_records),
        "edxml_messages_per_s": round(e_ok / e_seconds, 1),
        "baseline_edxml_messages_per_s": round(args.messages / raw_e, 1),
        "connections": args.connections,
        "broker": srv.broker,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        **git_state(),
    }
    print(orjson.dumps(result).decode(), flush=True)
    return result


if __name__ == "__main__":
    main()
