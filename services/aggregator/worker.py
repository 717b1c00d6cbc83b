"""The aggregator's consume loop: Kafka records in batches → one committed flush each.

Lifecycle: ``CREATED → RUNNING → STOPPING → STOPPED``. ``stop()`` lets the current batch
commit, then closes the consumer (leaving the group at once, so partitions move quickly).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import Enum

import structlog
from confluent_kafka import Message
from prometheus_client import Counter, Histogram

from services.aggregator.adapters.kafka import GroupConsumer, record_of
from services.aggregator.domain.batch import Batch
from services.aggregator.domain.claims import positions_after_commit
from services.aggregator.domain.decode import Decoder
from services.aggregator.flush import Flusher, FlushResult, Outcome
from services.aggregator.settings import AggregatorSettings
from services.runtime.retry import delay_s

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
STALE = Counter("aggregator_stale_batches_total", "Batches dropped after losing a partition")
FAILED = Counter("aggregator_failed_batches_total", "Batches that failed to commit and were retried")


class WorkerState(Enum):
    CREATED = "created"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Aggregator:
    """Consumes the sector topics in one group and commits batches exactly once."""

    def __init__(
        self,
        settings: AggregatorSettings,
        consumer: GroupConsumer,
        flusher: Flusher,
        decoder: Decoder,
        refresh_units: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.flusher = flusher
        self.decoder = decoder
        self.refresh_units = refresh_units  # reload the unit registry if it changed
        self.state = WorkerState.CREATED
        self.committed_batches = 0
        self._failures = 0  # consecutive batches that did not commit: the back-off before a re-read

    @property
    def running(self) -> bool:
        return self.state is WorkerState.RUNNING

    def stop(self) -> None:
        if self.state is WorkerState.RUNNING:
            self.state = WorkerState.STOPPING

    def _new_batch(self) -> Batch:
        return Batch(self.settings.batch_max_records, self.settings.batch_max_age_ms / 1000)

    async def run(self) -> None:
        """Consume and commit until :meth:`stop` is called.

        Pipelined: while one batch commits (PostgreSQL works on another core), the next is
        read and decoded. Commits stay strictly sequential - a batch is flushed only after
        the previous one finished - so offsets chain and entity state is read after the
        previous batch wrote it. If a commit fails, the batch read behind it is dropped too
        and reading restarts from the stored offsets - the drop and the seek happen here, with
        no read in between, so nothing read after the failure can be committed past a gap.
        """
        self.state = WorkerState.RUNNING
        await self.consumer.start()
        batch = self._new_batch()
        in_flight: asyncio.Task[bool] | None = None
        last_lag = 0.0
        try:
            while self.running:
                if in_flight is not None and in_flight.done():
                    committed, in_flight = in_flight.result(), None
                    if not committed:
                        batch = await self._recover()
                messages = await self.consumer.consume(
                    self.settings.batch_max_records - batch.size, 0.05 if batch.size or in_flight else 0.5
                )
                if self.consumer.rebalanced:  # the assignment changed inside that consume call
                    self.consumer.rebalanced = False
                    batch = self._new_batch()  # records read before the rebalance are read again
                self._add(batch, messages)
                if batch.should_flush():
                    if in_flight is not None:
                        committed, in_flight = await in_flight, None
                        if not committed:
                            batch = await self._recover()
                            continue
                    await self._recheck_units(batch)
                    in_flight = asyncio.create_task(self._flush(batch.seal()), name="flush")
                    batch = self._new_batch()
                if time.monotonic() - last_lag > 5:
                    last_lag = time.monotonic()
                    await self.consumer.update_lag()
            await self._drain(in_flight, batch)
        finally:
            self.state = WorkerState.STOPPING
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()
            await self.consumer.close()
            self.state = WorkerState.STOPPED

    def _add(self, batch: Batch, messages: list[Message]) -> None:
        """Decode the records of partitions this process owns into the batch."""
        positions = self.consumer.positions
        decode = self.decoder.decode
        for message in messages:
            if (message.topic(), message.partition()) in positions:
                batch.add(decode(record_of(message)))

    async def _recheck_units(self, batch: Batch) -> None:
        """Before dead-lettering records for their unit, make sure the registry is the latest:
        ingest may have validated them against a unit file loaded after ours."""
        if self.refresh_units is None or not any(p.unit_problem for p in batch.poison):
            return
        await self.refresh_units()  # also when another caller's check already reloaded it
        recovered = batch.redecode_units(self.decoder.decode)
        if recovered:
            log.info("unit registry reloaded before dead-lettering", recovered=recovered)

    async def _drain(self, in_flight: asyncio.Task[bool] | None, batch: Batch) -> None:
        """On stop: let the batch in flight finish, then commit what was read."""
        if in_flight is not None and not await in_flight:
            return
        if batch.size and self.consumer.positions:
            await self._recheck_units(batch)
            await self._flush(batch.seal())

    async def _flush(self, batch: Batch) -> bool:
        """Flush one batch; returns whether it committed."""
        result = await self.flusher.flush(batch, self.consumer.positions)
        if result.committed:
            self._after_commit(batch, result)
            await self.consumer.commit_for_lag_tools(result.moves)
            return True
        if result.outcome is Outcome.STALE:
            STALE.inc()
            log.warning("batch dropped: partition taken over", reason=result.reason)
        else:
            FAILED.inc()
            self._failures += 1
            log.warning("batch not committed; will read it again", error=result.reason)
        return False

    async def _recover(self) -> Batch:
        """After a batch that did not commit: back off, then read again from the stored
        offsets (``Flusher.positions_to_resume``). Returns the fresh batch to fill."""
        if self._failures:
            await asyncio.sleep(delay_s(self._failures, first_s=0.5, cap_s=10.0))
        positions, _moved = await self.flusher.positions_to_resume(self.consumer.positions)
        self.consumer.positions = positions
        await self.consumer.seek(positions)
        return self._new_batch()

    def _after_commit(self, batch: Batch, result: FlushResult) -> None:
        self._failures = 0
        positions_after_commit(self.consumer.positions, result.moves)
        self.committed_batches += 1
        BATCH_SECONDS.observe(result.seconds)
        BATCH_RECORDS.observe(batch.size)
        EVENTS.labels("counted").inc(result.new_events)
        EVENTS.labels("duplicate").inc(result.duplicates)
        if batch.poison:
            EVENTS.labels("dead_letter").inc(len(batch.poison))
            DEAD_LETTERS.inc(len(batch.poison))
        now_ms = time.time() * 1000
        for event in (*batch.events[:1], *batch.events[-1:]):
            if event.record.timestamp_ms:
                EVENT_LATENCY.observe(max(0.0, (now_ms - event.record.timestamp_ms) / 1000))
