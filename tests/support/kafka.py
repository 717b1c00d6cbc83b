"""Kafka helpers for tests: provision a prefixed set of topics, fill them, read them back."""

import secrets
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


def fill(bootstrap: str, prefix: str, events: Iterable[dict[str, Any]]) -> int:
    """Produce simulator events to their sector topics exactly as the services would."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 20, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 2_000_000})
    count = 0
    for event in events:
        sector = sector_of(event["type"])
        assert sector is not None, event["type"]
        key, value, headers = to_record(event)
        while True:
            try:
                producer.produce(sector_topic(sector, prefix), value=value, key=key, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 10000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0, "messages left undelivered"
    return count


def produce_raw(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key, value, headers in records:
        producer.produce(topic, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe-" + secrets.token_hex(3)})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        out = {}
        for partition in metadata.topics[topic].partitions:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            out[partition] = high
        return out
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Every record currently in a topic (assign + read to the end offsets, no group)."""
    ends = end_offsets(bootstrap, topic)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-" + secrets.token_hex(3),
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        out: list[Any] = []
        remaining = {p: e for p, e in ends.items() if e > 0}
        import time

        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error():
                    continue
                out.append(message)
                if message.offset() + 1 >= remaining.get(message.partition(), 0):
                    remaining.pop(message.partition(), None)
        assert not remaining, f"could not read to the end of {topic}: {remaining}"
        return out
    finally:
        consumer.close()
