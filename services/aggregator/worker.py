"""The aggregator's consume loop: Kafka records in batches → one PostgreSQL transaction each.

confluent-kafka's consumer runs its blocking calls on one dedicated thread; its rebalance
callbacks (which run inside ``consume``) hand partition claims to the event loop and wait
for them, so a partition is never read before its stored offset is known.

Lifecycle: ``CREATED → RUNNING → STOPPING → STOPPED``. ``stop()`` lets the current batch
commit, then closes the consumer (leaving the group at once, so partitions move quickly).
"""

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from enum import Enum

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
from prometheus_client import Counter, Gauge, Histogram

from schemas.sectors import SECTORS
from schemas.streams import KpiUpdate
from schemas.topics import deadletter_topic, kpi_updates_topic, sector_topic
from schemas.units import UnitRegistry
from services.aggregator.adapters.store import CounterStore, PartitionInfo, StaleAssignment
from services.aggregator.domain.batch import Batch, Effects
from services.aggregator.domain.batch import TopicPartition as TP
from services.aggregator.domain.decode import Decoder, Poison, Record
from services.aggregator.settings import AggregatorSettings
from services.runtime.clock import Clock
from services.runtime.db import UNAVAILABLE_ERRORS
from services.runtime.kafka import DurableProducer, OutgoingMessage

log = structlog.get_logger(__name__)

BATCH_RECORDS = Histogram(
    "aggregator_batch_records",
    "Records per committed batch",
    buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000, 50000),
)
BATCH_SECONDS = Histogram(
    "aggregator_batch_commit_seconds",
    "Time to commit one batch to PostgreSQL",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENT_LATENCY = Histogram(
    "aggregator_event_to_commit_seconds",
    "From a record's Kafka timestamp to its batch's commit (oldest and newest of each batch)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EVENTS = Counter("aggregator_events_total", "Records processed by outcome", ["outcome"])
DEAD_LETTERS = Counter("aggregator_dead_letters_total", "Records sent to the dead-letter topic")
LAG = Gauge("aggregator_consumer_lag", "Records behind the log end", ["topic", "partition"])
STALE = Counter("aggregator_stale_batches_total", "Batches dropped after losing a partition")
FAILED = Counter("aggregator_failed_batches_total", "Batches that failed to commit and were retried")
ASSIGNED = Gauge("aggregator_assigned_partitions", "Partitions this process currently owns")


class WorkerState(Enum):
    CREATED = "created"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


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


def kpi_updates(effects: Effects) -> list[KpiUpdate]:
    """Group touched counters by (unit, sector) for the kpi-updates topic."""
    grouped: dict[tuple[str, str], tuple[set[str], list[int]]] = {}
    for unit, sector, metric, hour in effects.touched:
        metrics, hours = grouped.setdefault((unit, sector), (set(), []))
        metrics.add(metric)
        hours.append(hour)
    return [KpiUpdate.of(unit, sector, metrics, hours) for (unit, sector), (metrics, hours) in sorted(grouped.items())]


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


class Aggregator:
    """Consumes the sector topics in one group and commits batches exactly once."""

    def __init__(
        self,
        settings: AggregatorSettings,
        store: CounterStore,
        registry: Callable[[], UnitRegistry],
        producer: DurableProducer,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.producer = producer
        self.clock = clock
        prefix = settings.kafka.topic_prefix
        self.topics = [sector_topic(s, prefix) for s in SECTORS]
        self.dlq_topic = deadletter_topic(prefix)
        self.updates_topic = kpi_updates_topic(prefix)
        self.state = WorkerState.CREATED
        self.positions: dict[TP, tuple[int, int]] = {}  # partition → (generation, stored offset)
        self._rebalanced = False
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="consumer")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: Consumer | None = None
        self._admin = AdminClient(settings.kafka.librdkafka())
        self.committed_batches = 0

    # -- rebalance callbacks (run on the consumer thread, inside consume()) -------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        infos = [self._partition_info(consumer, tp) for tp in partitions]
        assert self._loop is not None
        while True:
            future = asyncio.run_coroutine_threadsafe(self.store.claim(infos), self._loop)
            try:
                claims = future.result(timeout=60)
                break
            except (*UNAVAILABLE_ERRORS, concurrent.futures.TimeoutError) as exc:
                log.warning("cannot claim partitions yet; retrying", error=str(exc))
                if self.state is not WorkerState.RUNNING:
                    return
                time.sleep(1)
        self.positions = {}
        for tp in partitions:
            claim = claims[(tp.topic, tp.partition)]
            tp.offset = claim.start if claim.start >= 0 else OFFSET_BEGINNING
            self.positions[(tp.topic, tp.partition)] = (claim.generation, claim.start)
        consumer.assign(partitions)
        ASSIGNED.set(len(partitions))
        self._rebalanced = True
        log.info("partitions assigned", partitions=sorted(f"{t}[{p}]@{o[1]}" for (t, p), o in self.positions.items()))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._rebalanced = True
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

    # -- the loop ------------------------------------------------------------------------
    def _new_consumer(self) -> Consumer:
        conf = {
            **self.settings.kafka.librdkafka(),
            "group.id": self.settings.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self.settings.kafka.session_timeout_ms,
            "heartbeat.interval.ms": max(500, self.settings.kafka.session_timeout_ms // 5),
            "max.poll.interval.ms": 300_000,
            "fetch.wait.max.ms": self.settings.fetch_wait_max_ms,
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 10_485_760,
            "queued.max.messages.kbytes": 262_144,
            "partition.assignment.strategy": "range",
        }
        consumer = Consumer(conf)
        consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke)
        return consumer

    def _consume(self, count: int, timeout_s: float) -> list[Message]:
        assert self._consumer is not None
        return self._consumer.consume(count, timeout_s)  # type: ignore[no-any-return]

    async def run(self) -> None:
        """Consume and commit until :meth:`stop` is called.

        Pipelined: while one batch commits (PostgreSQL works on another core), the next is
        read and decoded. Commits stay strictly sequential - a batch is handed to
        :meth:`_flush` only after the previous one finished - so offsets chain and entity
        state is read after the previous batch wrote it. If a commit fails, the batch read
        behind it is dropped too and reading restarts from the stored offsets.
        """
        self._loop = asyncio.get_running_loop()
        self.state = WorkerState.RUNNING
        self._consumer = await self._loop.run_in_executor(self._executor, self._new_consumer)
        batch = self._new_batch()
        decoder = Decoder(self.registry())
        in_flight: asyncio.Task[bool] | None = None
        last_lag = 0.0
        try:
            while self.state is WorkerState.RUNNING:
                if in_flight is not None and in_flight.done():
                    committed, in_flight = in_flight.result(), None
                    if not committed:
                        batch = self._new_batch()
                        await self._rewind()
                room = self.settings.batch_max_records - batch.size
                wait = 0.05 if batch.size or in_flight else 0.5
                messages = await self._loop.run_in_executor(self._executor, self._consume, room, wait)
                if self._rebalanced:
                    self._rebalanced = False
                    batch = self._new_batch()  # records read before the rebalance are re-read
                    decoder = Decoder(self.registry())
                positions = self.positions
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("consumer error", error=str(error))
                        continue
                    if (message.topic(), message.partition()) in positions:
                        batch.add(decoder.decode(record_of(message)))
                if batch.should_flush():
                    if in_flight is not None:
                        committed, in_flight = await in_flight, None
                        if not committed:
                            batch = self._new_batch()
                            await self._rewind()
                            continue
                    in_flight = asyncio.create_task(self._flush(batch), name="flush")
                    batch = self._new_batch()
                if time.monotonic() - last_lag > 5:
                    last_lag = time.monotonic()
                    await self._loop.run_in_executor(self._executor, self._update_lag)
            if in_flight is not None and not await in_flight:
                batch = self._new_batch()
            if batch.size and self.positions:
                await self._flush(batch)
        finally:
            self.state = WorkerState.STOPPING
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()
            await self._loop.run_in_executor(self._executor, self._close_consumer)
            self._executor.shutdown(wait=True)
            self.state = WorkerState.STOPPED

    def stop(self) -> None:
        if self.state is WorkerState.RUNNING:
            self.state = WorkerState.STOPPING

    def _new_batch(self) -> Batch:
        return Batch(self.settings.batch_max_records, self.settings.batch_max_age_ms / 1000)

    def _close_consumer(self) -> None:
        if self._consumer is not None:
            self._consumer.close()

    async def _rewind(self) -> None:
        """After a batch that did not commit, read again from the offsets PostgreSQL holds.

        The stored offsets are the truth, not the ones in memory: a commit acknowledged
        with synchronous_commit = off is lost if PostgreSQL crashes before writing it, and a
        commit whose acknowledgement was lost did happen. Either way memory and database
        differ, and rewinding to memory would fail every later compare-and-set. A partition
        whose generation changed was claimed by another consumer: it is dropped here (the
        rebalance revokes it)."""
        current = self.positions
        try:
            stored = await self.store.stored_positions(list(current))
        except UNAVAILABLE_ERRORS as exc:
            log.warning("stored offsets unavailable; rewinding to the offsets in memory", error=str(exc))
            stored = {}
        for tp, (generation, offset) in list(current.items()):
            if tp not in stored:
                continue
            stored_generation, stored_offset = stored[tp]
            if stored_generation != generation:
                current.pop(tp, None)
            elif stored_offset != offset:
                log.warning(
                    "offset in memory differs from the stored one; using the stored one",
                    topic=tp[0],
                    partition=tp[1],
                    memory=offset,
                    stored=stored_offset,
                )
                current[tp] = (generation, stored_offset)
        positions = dict(current)

        def seek() -> None:
            assert self._consumer is not None
            for (topic, partition), (_gen, offset) in positions.items():
                try:
                    self._consumer.seek(TopicPartition(topic, partition, offset))
                except KafkaException as exc:
                    log.warning("seek failed", topic=topic, partition=partition, error=str(exc))

        assert self._loop is not None
        await self._loop.run_in_executor(self._executor, seek)

    async def _flush(self, batch: Batch) -> bool:
        """Commit a batch. Steps:

        1. publish poison records to the dead-letter topic and wait for the broker (so a
           record is never skipped without a copy - a crash here may copy it twice);
        2. one PostgreSQL transaction: offsets (compare-and-set), dedupe, states, counters;
        3. after the commit: publish what changed to ``kpi-updates`` (alerts never see
           uncommitted numbers) and commit offsets to Kafka for lag tooling only.

        Returns False when the batch was not committed (it is then read again).
        """
        offsets = {}
        for tp, nxt in batch.next_offsets.items():
            if tp not in self.positions:
                return False
            generation, stored = self.positions[tp]
            offsets[tp] = (generation, stored, nxt)
        started = time.monotonic()
        try:
            if batch.poison:
                errors = await self.producer.publish([dead_letter(p, self.dlq_topic) for p in batch.poison])
                if any(errors):
                    raise ConnectionError(f"dead-letter publish failed: {next(e for e in errors if e)}")
                for poison in batch.poison:
                    log.warning(
                        "dead-lettered",
                        reason=poison.reason,
                        topic=poison.record.topic,
                        partition=poison.record.partition,
                        offset=poison.record.offset,
                    )
            result = await self.store.commit(batch.events, offsets, batch.unique_new, self.clock.now().date())
        except StaleAssignment as exc:
            STALE.inc()
            log.warning("batch dropped: partition taken over", reason=str(exc))
            return False
        except (*UNAVAILABLE_ERRORS, ConnectionError) as exc:
            FAILED.inc()
            log.warning("batch not committed; will read it again", error=str(exc))
            await asyncio.sleep(1)
            return False
        for tp, (generation, _stored, nxt) in offsets.items():
            if tp in self.positions:
                self.positions[tp] = (generation, nxt)
        self.committed_batches += 1
        elapsed = time.monotonic() - started
        BATCH_SECONDS.observe(elapsed)
        BATCH_RECORDS.observe(batch.size)
        EVENTS.labels("counted").inc(result.new_events)
        EVENTS.labels("duplicate").inc(result.duplicates)
        if batch.poison:
            EVENTS.labels("dead_letter").inc(len(batch.poison))
            DEAD_LETTERS.inc(len(batch.poison))
        self._observe_latency(batch)
        await self._after_commit(offsets, result.effects)
        return True

    def _observe_latency(self, batch: Batch) -> None:
        now_ms = time.time() * 1000
        stamps = [e.record.timestamp_ms for e in (batch.events[:1] + batch.events[-1:]) if e.record.timestamp_ms]
        for stamp in stamps:
            EVENT_LATENCY.observe(max(0.0, (now_ms - stamp) / 1000))

    async def _after_commit(self, offsets: dict[TP, tuple[int, int, int]], effects: Effects) -> None:
        if self.settings.publish_kpi_updates and effects.touched:
            await self._publish_updates(effects)
        commits = [TopicPartition(t, p, nxt) for (t, p), (_g, _s, nxt) in offsets.items()]

        def commit_for_lag_tools() -> None:
            assert self._consumer is not None
            try:
                self._consumer.commit(offsets=commits, asynchronous=True)
            except KafkaException:
                pass  # informational only: PostgreSQL holds the offsets that count

        assert self._loop is not None
        await self._loop.run_in_executor(self._executor, commit_for_lag_tools)

    async def _publish_updates(self, effects: Effects) -> None:
        """One compact message per touched (unit, sector), keyed by unit: which metrics
        changed and the span of event hours they changed in."""
        messages = [
            OutgoingMessage(
                topic=self.updates_topic,
                key=update.unit.encode(),
                value=update.model_dump_json(by_alias=True).encode(),
                headers=[],
            )
            for update in kpi_updates(effects)
        ]
        errors = await self.producer.publish(messages)
        if any(errors):
            # Alerts re-read the counters they are told about; a lost update delays an alert
            # until the next change of that counter, it never corrupts a number.
            log.warning("kpi-updates publish incomplete", failed=sum(1 for e in errors if e))

    def _update_lag(self) -> None:
        if self._consumer is None:
            return
        for (topic, partition), (_gen, stored) in list(self.positions.items()):
            try:
                _low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            except KafkaException:
                continue
            if high >= 0:
                LAG.labels(topic, str(partition)).set(max(0, high - stored))
