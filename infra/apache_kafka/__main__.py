"""CLI: ``python -m infra.apache_kafka {fetch,run}``.

* ``fetch`` prints the cached lib dir (downloading the jars on first use).
* ``run`` formats and starts 1 or N nodes, prints ``KAFKA_BOOTSTRAP_SERVERS=<list>`` once
  ready, then stays in the foreground until SIGINT/SIGTERM and stops the nodes cleanly.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from .launcher import (
    KafkaCluster,
    KafkaError,
    KafkaNode,
    ensure_classpath,
    free_ports,
    kafka_version,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m infra.apache_kafka",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--version",
        dest="kafka_version",
        default=None,
        help="Kafka version (default: $SMARTCITY_KAFKA_VERSION or %(prog)s default)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("fetch", help="download the Kafka jars (cached) and print the lib dir")

    r = sub.add_parser("run", help="run Kafka in the foreground until SIGINT/SIGTERM")
    r.add_argument(
        "--port",
        type=int,
        default=9092,
        help="client port of node 1; node i uses port+i-1 (0 = any free ports)",
    )
    r.add_argument(
        "--controller-port",
        type=int,
        default=None,
        help="controller port of node 1; node i uses +i-1 (default: --port + 1000, or free "
        "ports with --port 0). Keep it stable to restart from the same --data-dir: the KRaft "
        "voter set records controller endpoints at format time",
    )
    r.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory (kept); default: a temp dir removed on exit",
    )
    r.add_argument("--nodes", type=int, default=1, help="number of nodes (1 or 3; default 1)")
    r.add_argument("--cluster-id", default=None, help="cluster id for a fresh data dir")
    r.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    r.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for a clean stop before SIGKILL",
    )
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra broker property (repeatable)",
    )
    return p


def _ports(start: int, n: int) -> list[int]:
    return free_ports(n) if start == 0 else [start + i for i in range(n)]


def _run(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        print("--nodes must be >= 1", file=sys.stderr)
        return 2
    extra: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"--set expects KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        extra[key.strip()] = value.strip()

    tmp: str | None = None
    data_dir: Path = args.data_dir
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="smartcity-kafka-")
        data_dir = Path(tmp)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    ports = _ports(args.port, args.nodes)
    cport = args.controller_port
    if cport is None:
        cport = 0 if args.port == 0 else args.port + 1000
    cports = _ports(cport, args.nodes)
    target: KafkaNode | KafkaCluster
    if args.nodes == 1:
        target = KafkaNode(
            data_dir,
            port=ports[0],
            controller_port=cports[0],
            cluster_id=args.cluster_id,
            extra_config=extra,
            version=args.kafka_version,
        )
    else:
        target = KafkaCluster(
            data_dir,
            nodes=args.nodes,
            ports=ports,
            controller_ports=cports,
            cluster_id=args.cluster_id,
            extra_config=extra,
            version=args.kafka_version,
        )
    try:
        target.start()
        target.wait_ready(timeout=args.timeout)
        print(f"KAFKA_BOOTSTRAP_SERVERS={target.bootstrap}", flush=True)
        while not stop.is_set():
            running = (
                target.is_running() if isinstance(target, KafkaNode) else len(target.running_nodes()) == args.nodes
            )
            if not running:
                print("a Kafka node exited unexpectedly", file=sys.stderr)
                return 1
            stop.wait(0.5)
        return 0
    except KafkaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        target.stop(timeout=args.stop_timeout)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.cmd == "fetch":
        try:
            print(ensure_classpath(kafka_version(args.kafka_version)), flush=True)
        except KafkaError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
