"""The aggregator's Kafka adapter: the group consumer and the two publishers.

confluent-kafka's consumer runs its blocking calls on one dedicated thread; its rebalance
callbacks (which run inside ``consume``) hand partition claims to the event loop and wait
for them, so a partition is never read before its stored offset is known.
"""

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from prometheus_client import Gauge

from schemas.streams import KpiUpdate
from services.aggregator.domain.claims import PartitionInfo, Position
from services.aggregator.domain.claims import TopicPartition as TP
from services.aggregator.domain.decode import Poison, Record
from services.aggregator.ports import OffsetMove, OffsetStore, PublishFailed
from services.runtime.db import UNAVAILABLE_ERRORS
from services.runtime.kafka import DurableProducer, OutgoingMessage
from services.runtime.retry import retrying_sync
from services.runtime.settings import KafkaSettings

log = structlog.get_logger(__name__)
T = TypeVar("T")

LAG = Gauge("aggregator_consumer_lag", "Records behind the log end", ["topic", "partition"])
ASSIGNED = Gauge("aggregator_assigned_partitions", "Partitions this process currently owns")


def record_of(message: Message) -> Record:
    kind, stamp = message.timestamp()
    return Record(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        value=message.value(),
        headers=message.headers(),
        timestamp_ms=stamp if kind else None,
    )


def dead_letter(poison: Poison, topic: str) -> OutgoingMessage:
    """The dead-letter copy of a record: original key, value and headers plus the reason
    and where it came from."""
    record = poison.record
    headers = list(record.headers or [])
    headers += [
        # cut at 1000 bytes without splitting a UTF-8 character
        ("dlq_reason", poison.reason.encode()[:1000].decode("utf-8", "ignore").encode()),
        ("dlq_topic", record.topic.encode()),
        ("dlq_partition", str(record.partition).encode()),
        ("dlq_offset", str(record.offset).encode()),
    ]
    return OutgoingMessage(topic=topic, key=record.key, value=record.value or b"", headers=headers)


class KafkaDeadLetters:
    """``ports.DeadLetterPublisher`` on the durable producer."""

    def __init__(self, producer: DurableProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def publish(self, poison: list[Poison]) -> None:
        errors = await self.producer.publish([dead_letter(p, self.topic) for p in poison])
        failed = next((e for e in errors if e is not None), None)
        if failed is not None:
            raise PublishFailed(f"dead-letter publish failed: {failed}")
        for item in poison:
            record = item.record
            log.warning(
                "dead-lettered",
                reason=item.reason,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )


class KafkaUpdates:
    """``ports.UpdatesPublisher``: one compact message per touched (unit, sector), keyed by
    unit: which metrics changed and the span of event hours they changed in."""

    def __init__(self, producer: DurableProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def publish(self, updates: list[KpiUpdate]) -> None:
        messages = [
            OutgoingMessage(self.topic, u.unit.encode(), u.model_dump_json(by_alias=True).encode(), []) for u in updates
        ]
        errors = await self.producer.publish(messages)
        if any(errors):
            # alerts re-read the counters they are told about, and sweep every unit regularly
            log.warning("kpi-updates publish incomplete", failed=sum(1 for e in errors if e))


class GroupConsumer:
    """The consumer of the sector topics, on its own thread, claiming partitions on assign.

    ``positions`` maps every partition this process owns to (generation, stored offset);
    ``rebalanced`` is set whenever the assignment changed (the caller drops what it read).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        conf: dict[str, str | int | bool],
        topics: list[str],
        offsets: OffsetStore,
        running: Callable[[], bool],
    ) -> None:
        self.conf = {**kafka.librdkafka(), **conf}
        self.topics = topics
        self.offsets = offsets
        self.running = running
        self.positions: dict[TP, Position] = {}
        self.rebalanced = False
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="consumer")
        self._admin = AdminClient(kafka.librdkafka())
        self._consumer: Consumer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _call(self, fn: Callable[[], T]) -> T:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._executor, fn)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

        def subscribe() -> Consumer:
            consumer = Consumer(self.conf)
            consumer.subscribe(
                self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )
            return consumer

        self._consumer = await self._call(subscribe)

    async def consume(self, count: int, timeout_s: float) -> list[Message]:
        """Up to ``count`` records of owned partitions (errors logged, EOFs skipped)."""
        assert self._consumer is not None
        consumer = self._consumer
        messages = await self._call(lambda: consumer.consume(count, timeout_s))
        out = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error", error=str(error))
                continue
            out.append(message)
        return out

    async def seek(self, positions: dict[TP, Position]) -> None:
        def seek() -> None:
            assert self._consumer is not None
            for (topic, partition), (_gen, offset) in positions.items():
                try:
                    self._consumer.seek(TopicPartition(topic, partition, offset))
                except KafkaException as exc:
                    log.warning("seek failed", topic=topic, partition=partition, error=str(exc))

        await self._call(seek)

    async def commit_for_lag_tools(self, moves: dict[TP, OffsetMove]) -> None:
        """Kafka offsets, for lag tooling only: PostgreSQL holds the offsets that count."""
        commits = [TopicPartition(t, p, nxt) for (t, p), (_g, _s, nxt) in moves.items()]

        def commit() -> None:
            assert self._consumer is not None
            try:
                self._consumer.commit(offsets=commits, asynchronous=True)
            except KafkaException:
                pass

        await self._call(commit)

    async def update_lag(self) -> None:
        def update() -> None:
            if self._consumer is None:
                return
            for (topic, partition), (_gen, stored) in list(self.positions.items()):
                try:
                    _low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
                except KafkaException:
                    continue
                if high >= 0:
                    LAG.labels(topic, str(partition)).set(max(0, high - stored))

        await self._call(update)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._call(self._consumer.close)
        self._executor.shutdown(wait=True)

    # -- rebalance callbacks (run on the consumer thread, inside consume()) -------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        infos = [self._partition_info(consumer, tp) for tp in partitions]
        assert self._loop is not None
        errors = (*UNAVAILABLE_ERRORS, TimeoutError)
        try:
            for attempt in retrying_sync("claim partitions", errors, while_=self.running):
                with attempt:
                    claims = asyncio.run_coroutine_threadsafe(self.offsets.claim(infos), self._loop).result(60)
        except errors:
            return  # stopping before PostgreSQL answered: the partitions stay unassigned
        positions = {}
        for tp in partitions:
            claim = claims[(tp.topic, tp.partition)]
            tp.offset = claim.start if claim.start >= 0 else OFFSET_BEGINNING
            positions[(tp.topic, tp.partition)] = (claim.generation, claim.start)
        self.positions = positions
        consumer.assign(partitions)
        ASSIGNED.set(len(partitions))
        self.rebalanced = True
        log.info("partitions assigned", partitions=sorted(f"{t}[{p}]@{o[1]}" for (t, p), o in positions.items()))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.rebalanced = True
        self.positions = {}
        ASSIGNED.set(0)
        consumer.unassign()
        log.info("partitions revoked", count=len(partitions))

    def _partition_info(self, consumer: Consumer, tp: TopicPartition) -> PartitionInfo:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10, cached=False)
        except KafkaException as exc:
            # unknown bounds: start a new partition at 0 (the consumer resets to the earliest
            # offset if that is gone) and let the topic id decide whether the log was reset
            log.warning("watermarks unavailable", topic=tp.topic, partition=tp.partition, error=str(exc))
            low, high = 0, -1
        return PartitionInfo(tp.topic, tp.partition, self._topic_id(tp.topic), low, high)

    def _topic_id(self, topic: str) -> str | None:
        try:
            futures = self._admin.describe_topics(TopicCollection([topic]), request_timeout=10)
            return str(futures[topic].result().topic_id)
        except (KafkaException, KeyError, AttributeError) as exc:
            log.warning("topic id unavailable; reset detection uses offsets only", topic=topic, error=str(exc))
            return None
