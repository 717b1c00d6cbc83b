"""Kafka helpers for tests: provision a prefixed set of topics, fill them, read them back."""

import secrets
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from infra.topics import provision_topics
from schemas.sectors import sector_of
from schemas.topics import sector_topic
from services.runtime.settings import KafkaSettings
from services.simulator.encode import to_record


def new_prefix() -> str:
    return f"t{secrets.token_hex(4)}."


def provision(bootstrap: str, prefix: str) -> KafkaSettings:
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    provision_topics(settings)
    return settings


Ends = dict[tuple[str, int], int]


class _Ends:
    """Next offset per partition, learnt from delivery reports. Brokers' own end offsets are
    not trusted: Tansu 0.6 reports the base offset of the last record batch + 1."""

    def __init__(self) -> None:
        self.ends: Ends = {}
        self.failed = 0

    def __call__(self, err: Any, message: Any) -> None:
        if err is not None:
            self.failed += 1
            return
        key = (message.topic(), message.partition())
        self.ends[key] = max(self.ends.get(key, 0), message.offset() + 1)


def _produce(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    on_delivery: _Ends,
) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.1)


def fill(bootstrap: str, prefix: str, events: Iterable[dict[str, Any]]) -> Ends:
    """Produce simulator events to their sector topics exactly as the services would;
    returns the next offset of every partition written to."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 2_000_000,
        }
    )
    ends = _Ends()
    for count, event in enumerate(events, start=1):
        sector = sector_of(event["type"])
        assert sector is not None, event["type"]
        key, value, headers = to_record(event)
        _produce(producer, sector_topic(sector, prefix), key, value, headers, ends)
        if count % 10000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0, "messages left undelivered"
    assert ends.failed == 0, f"{ends.failed} messages failed"
    return ends.ends


def produce_raw(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]
) -> Ends:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    ends = _Ends()
    for key, value, headers in records:
        _produce(producer, topic, key, value, headers, ends)
    assert producer.flush(30) == 0 and ends.failed == 0
    return ends.ends


def read_all(bootstrap: str, topic: str, expected: int | None = None, timeout_s: float = 30.0) -> list[Any]:
    """The first ``expected`` records of a topic, across partitions (assign from offset 0,
    no group). Fails if fewer arrive in time; more than ``expected`` is also a failure."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader-" + secrets.token_hex(3), "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        if expected is None:  # unknown count: read until the topic stays quiet for 2 s
            while time.monotonic() < deadline:
                got = [m for m in consumer.consume(1000, 2.0) if not m.error()]
                if not got:
                    break
                out += got
            return sorted(out, key=lambda m: (m.partition(), m.offset()))
        while len(out) < expected and time.monotonic() < deadline:
            out += [m for m in consumer.consume(1000, 0.2) if not m.error()]
        assert len(out) >= expected, f"only {len(out)} of {expected} records in {topic}"
        extra = [m for m in consumer.consume(1000, 0.5) if not m.error()]  # nothing more may follow
        assert not extra, f"{topic} holds more than the {expected} records expected"
        return sorted(out, key=lambda m: (m.partition(), m.offset()))
    finally:
        consumer.close()
