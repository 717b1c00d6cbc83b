"""Where an ingest service spends its CPU per event, step by step, without I/O.

``python -m benchmarks.ingest_steps`` builds one batched-mode body of ``--batch`` simulator
events of one sector (the body ``benchmarks.ingest`` sends) and times, with the garbage
collector tuned as the service tunes it (:func:`services.runtime.serve.tune_gc`):

``parse_us``
    ``orjson.loads`` of the body - the baseline: the least any JSON service must do.
``validate_us``
    :func:`schemas.envelope.batch_is_valid`: the strict validation of the whole batch.
``prepare_us``
    :func:`services.ingest.pipeline.prepare_valid_batch`: unit and credential checks,
    CloudEvents Kafka headers and message objects.
``produce_us``
    ``Producer.produce`` of the prepared messages into librdkafka's local queue (a producer
    pointed at a closed port: nothing is sent, the queue is purged after each round).
``respond_us``
    The per-event results and ``orjson.dumps`` of the batched-mode answer.

All figures are microseconds per event, the median of ``--rounds`` rounds. The last line
of stdout is one JSON object; ``service_us`` is the sum and ``ratio_to_parse`` how many
times the baseline it costs.
"""

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Producer

from benchmarks.support import git_state, sector_events
from infra.migrate import reference_registry
from infra.processes import free_port
from schemas.envelope import batch_is_valid
from schemas.sectors import Sector
from services.ingest.pipeline import Prepared, UnitChecks, prepare_valid_batch
from services.runtime.auth import Principal
from services.runtime.serve import tune_gc


def per_event_us(step: Callable[[], Any], events: int, rounds: int) -> float:
    step()  # warm caches (validators, unit answers)
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        step()
        samples.append((time.perf_counter() - began) / events * 1e6)
    return round(statistics.median(samples), 3)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_steps", description=__doc__)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--sector", default="transport", choices=[s.value for s in Sector])
    parser.add_argument("--seed", type=int, default=20250505)
    args = parser.parse_args(argv)

    sector = Sector(args.sector)
    body = orjson.dumps(sector_events(args.sector, args.batch, args.seed))
    checks = UnitChecks(reference_registry())
    principal = Principal(key_id="bench", kind="ingest", label="bench", sector=args.sector)
    raws = orjson.loads(body)
    prepared = prepare_valid_batch(raws, sector=sector, checks=checks, principal=principal, topic="bench")
    messages = [p.message for p in prepared if isinstance(p, Prepared)]
    assert len(messages) == args.batch and batch_is_valid(body, sector), "the benchmark batch must be valid"
    # nothing listens there: produce() only fills the local queue, which each round purges
    producer = Producer(
        {"bootstrap.servers": f"127.0.0.1:{free_port()}", "queue.buffering.max.messages": 10**6, "log_level": 0}
    )

    def produce() -> None:
        for m in messages:
            producer.produce(m.topic, value=m.value, key=m.key, headers=m.headers)
        producer.purge()
        producer.poll(0)

    def respond() -> bytes:
        results = [{"index": p.index, "id": p.id, "status": "accepted", "errors": []} for p in prepared]
        return orjson.dumps({"accepted": len(results), "rejected": 0, "unavailable": 0, "results": results})

    tune_gc()
    n, rounds = args.batch, args.rounds
    steps = {
        "parse_us": per_event_us(lambda: orjson.loads(body), n, rounds),
        "validate_us": per_event_us(lambda: batch_is_valid(body, sector), n, rounds),
        "prepare_us": per_event_us(
            lambda: prepare_valid_batch(raws, sector=sector, checks=checks, principal=principal, topic="bench"),
            n,
            rounds,
        ),
        "produce_us": per_event_us(produce, n, rounds),
        "respond_us": per_event_us(respond, n, rounds),
    }
    producer.flush(0)
    total = round(sum(steps.values()), 3)
    result = {
        "benchmark": "ingest_steps",
        **steps,
        "service_us": total,
        "ratio_to_parse": round(total / steps["parse_us"], 1),
        "events_per_core_s_upper_bound": round(1e6 / total),
        "batch": n,
        "sector": args.sector,
        **git_state(),
    }
    print(json.dumps(result), file=sys.stdout)
    return result


if __name__ == "__main__":
    main()
