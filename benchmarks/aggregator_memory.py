"""Does the aggregator's memory level off under a steady load?

Runs two aggregator processes side by side on the same topics (each with its own database
and consumer group): the baseline as deployed, and a variant (default ``MALLOC_ARENA_MAX=2``,
which rules glibc's per-thread arenas in or out as the cause of growth). A producer sends
the simulator's mix at ``--rate`` for ``--seconds``; the RSS of both is sampled every
``--every`` seconds. The last line is one JSON object: the samples and, per process, the
growth over the second half of the run in MB/min (0 when memory is flat).

    python -m benchmarks.aggregator_memory --rate 2000 --seconds 600
"""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from benchmarks._bench_common import (
    AggregatorProcess,
    SteadyLoad,
    bench_servers,
    fresh_name,
    logs_to_stderr,
    wait_claimed,
)
from benchmarks.support import fresh_database, say, scratch, variant_of


def slope_mb_per_min(samples: list[dict[str, float]], name: str) -> float:
    """Least-squares slope of RSS over the second half of the samples."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return 0.0
    xs, ys = [s["t"] / 60 for s in half], [s[name] for s in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den, 2) if den else 0.0


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from tests.support.kafka import new_prefix, provision

    variant = variant_of(args.variant_cmd, args.variant_env)
    with bench_servers(workdir, args.bootstrap) as srv:
        prefix = new_prefix()
        provision(srv.bootstrap, prefix)
        running: dict[str, tuple[AggregatorProcess, asyncpg.Connection]] = {}
        try:
            for name, proposal in (("baseline", None), ("variant", variant)):
                dsn = await fresh_database(srv.admin_dsn, fresh_name(name))
                group = fresh_name("group")
                service = AggregatorProcess(srv, dsn, prefix, group, workdir, proposal)
                running[name] = (service, await asyncpg.connect(dsn))
                await wait_claimed(running[name][1], group, service, partitions=32)
            load = SteadyLoad(srv.bootstrap, prefix, args.rate, args.seconds, seed=20250505)
            await load.start()
            load.go()
            began = time.monotonic()
            samples: list[dict[str, float]] = []
            while time.monotonic() - began < args.seconds:
                row = {"t": round(time.monotonic() - began)}
                for name, (service, _conn) in running.items():
                    if service.proc.poll() is not None:
                        raise RuntimeError(f"{name} aggregator exited:\n{service.log_tail()}")
                    row[name] = round(psutil.Process(service.proc.pid).memory_info().rss / 2**20, 1)
                samples.append(row)
                say(f"  {row}")
                await asyncio.sleep(args.every)
            delivered = await load.result()
        finally:
            for service, conn in running.values():
                await conn.close()
                service.stop()
    return {
        "benchmark": "aggregator_memory",
        "broker": srv.broker,
        "rate": args.rate,
        "seconds": args.seconds,
        "events": len(delivered["delivered"]),
        "variant": {"argv": variant["argv"][1:], "env": variant["env"]} if variant else None,
        "rss_mb": samples,
        "growth_mb_per_min_second_half": {n: slope_mb_per_min(samples, n) for n in running},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--every", type=float, default=30, help="RSS sampling interval (s)")
    p.add_argument("--variant-cmd", default="python -m services.aggregator")
    p.add_argument("--variant-env", action="append", default=None, help="KEY=VALUE (default MALLOC_ARENA_MAX=2)")
    p.add_argument("--bootstrap", default=None, help="external Kafka (default: embedded Tansu)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    if args.variant_env is None:
        args.variant_env = ["MALLOC_ARENA_MAX=2"]
    logs_to_stderr()
    with scratch(args.keep) as workdir:
        result = asyncio.run(run(args, workdir))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
