"""The aggregator's service layer: commit one batch exactly once, and recover after a failure.

Written against the ports of ``services.aggregator.ports`` only, so its order of steps is
tested with in-memory fakes (``tests/unit/test_flush.py``) as well as against the real
broker and PostgreSQL (``tests/integration/test_aggregator_*.py``).
"""

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import structlog

from schemas.streams import KpiUpdate
from services.aggregator.domain.batch import Batch
from services.aggregator.domain.claims import Position, TopicPartition, positions_after_failure
from services.aggregator.domain.decode import Decoded
from services.aggregator.domain.fold import Effects, Lineage, entity_ids, fold
from services.aggregator.ports import (
    BatchTransaction,
    CounterStore,
    DeadLetterPublisher,
    OffsetMove,
    OffsetStore,
    PublishFailed,
    StaleAssignment,
    UpdatesPublisher,
)

log = structlog.get_logger(__name__)


class Outcome(Enum):
    COMMITTED = "committed"
    STALE = "stale"  # a partition was claimed by another consumer: the batch is dropped
    FAILED = "failed"  # the store or the broker failed: the batch is read again


@dataclass(slots=True)
class FlushResult:
    outcome: Outcome
    moves: dict[TopicPartition, OffsetMove] = field(default_factory=dict)
    new_events: int = 0
    duplicates: int = 0
    effects: Effects = field(default_factory=Effects)
    seconds: float = 0.0
    reason: str = ""

    @property
    def committed(self) -> bool:
        return self.outcome is Outcome.COMMITTED


async def _count(tx: BatchTransaction, batch: Batch, lineage: Lineage, today: dt.date) -> tuple[list[Decoded], Effects]:
    """Steps 3b-3e of :meth:`Flusher.flush`, inside the caller's transaction."""
    keys = list({e.event_key for e in batch.events})
    already = await tx.record_seen(keys, today) if keys else set()
    new = batch.unique_new(already)
    stored_states = await tx.load_states(entity_ids(new))
    effects = fold(new, stored_states, lineage)
    await tx.write(effects)
    return new, effects


async def count_batch(counters: CounterStore, batch: Batch, lineage: Lineage, today: dt.date) -> Effects:
    """Deduplicate, fold and write a batch in one transaction, without offsets: for the
    rebuild from history, benchmarks and tests that fill a store directly."""
    async with counters.transaction() as tx:
        _new, effects = await _count(tx, batch, lineage, today)
    return effects


def kpi_updates(effects: Effects) -> list[KpiUpdate]:
    """Touched counters grouped by (unit, sector) for the kpi-updates topic."""
    grouped: dict[tuple[str, str], tuple[set[str], list[int]]] = {}
    for unit, sector, metric, hour in effects.touched:
        metrics, hours = grouped.setdefault((unit, sector), (set(), []))
        metrics.add(metric)
        hours.append(hour)
    return [KpiUpdate.of(unit, sector, metrics, hours) for (unit, sector), (metrics, hours) in sorted(grouped.items())]


@dataclass(slots=True)
class Flusher:
    """Commits batches; ``failures`` are the store's errors that mean "read the batch again"
    (a dead-letter copy the broker did not take always does)."""

    counters: CounterStore
    offsets: OffsetStore
    dead_letters: DeadLetterPublisher
    updates: UpdatesPublisher | None
    lineage: Lineage
    today: Callable[[], dt.date]
    failures: tuple[type[BaseException], ...] = (OSError,)
    _read_again: tuple[type[BaseException], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._read_again = (PublishFailed, *self.failures)

    async def flush(self, batch: Batch, positions: dict[TopicPartition, Position]) -> FlushResult:
        """Commit a batch. Steps, in order:

        1. claim check: every partition of the batch must still be ours in memory;
        2. dead letters: copy the poison records and wait for the broker, *before* anything
           commits, so no record is ever skipped without a copy (a crash here may copy one
           twice);
        3. one transaction - all of it or nothing:
           a. advance each partition's offset by compare-and-set against the generation and
              offset the batch started from (another consumer's claim fails it here, first,
              before any other work);
           b. record the deduplication keys, learning which events were already counted;
           c. lock and load the state of every entity the new events touch;
           d. fold the new events (pure: ``domain.fold``);
           e. write entity states and counter deltas;
        4. after the commit only: publish what changed to ``kpi-updates`` (alerts never see
           uncommitted numbers).

        Never raises for the store or the broker: the result says whether the batch was
        committed, dropped as stale, or must be read again.
        """
        started = time.monotonic()
        moves: dict[TopicPartition, OffsetMove] = {}
        for tp, next_offset in batch.next_offsets.items():
            if tp not in positions:
                return FlushResult(Outcome.STALE, reason=f"{tp[0]}[{tp[1]}] is no longer assigned")
            generation, stored = positions[tp]
            moves[tp] = (generation, stored, next_offset)
        try:
            if batch.poison:
                await self.dead_letters.publish(batch.poison)
            async with self.counters.transaction() as tx:
                await tx.advance_offsets(moves)
                new, effects = await _count(tx, batch, self.lineage, self.today())
        except StaleAssignment as exc:
            return FlushResult(Outcome.STALE, moves, reason=str(exc))
        except self._read_again as exc:
            return FlushResult(Outcome.FAILED, moves, reason=f"{type(exc).__name__}: {exc}")
        result = FlushResult(
            Outcome.COMMITTED, moves, len(new), len(batch.events) - len(new), effects, time.monotonic() - started
        )
        if self.updates is not None and effects.touched:
            await self.updates.publish(kpi_updates(effects))
        return result

    async def positions_to_resume(
        self, current: dict[TopicPartition, Position]
    ) -> tuple[dict[TopicPartition, Position], list[TopicPartition]]:
        """After a batch that did not commit: where to read each partition again - the stored
        offsets, without the partitions another consumer has claimed meanwhile. If the store
        cannot be read, the offsets in memory (the next flush then tells)."""
        try:
            stored = await self.offsets.stored_positions(list(current))
        except self.failures as exc:
            log.warning("stored offsets unavailable; rewinding to the offsets in memory", error=str(exc))
            stored = {}
        positions, moved = positions_after_failure(current, stored)
        for tp in moved:
            log.warning(
                "offset in memory differs from the stored one; using the stored one",
                topic=tp[0],
                partition=tp[1],
                memory=current[tp][1],
                stored=positions[tp][1],
            )
        return positions, moved
