"""A batch of records gathered for one transaction.

Contract: :meth:`Batch.add` takes records in the order each partition delivered them;
:meth:`Batch.should_flush` says when the batch is big or old enough; :meth:`Batch.seal`
hands it over to the flush (``services.aggregator.flush``), which writes its effects
together with :attr:`Batch.next_offsets` in one transaction. Nothing here performs I/O.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from services.aggregator.domain.decode import Decoded, Poison, Record

TopicPartition = tuple[str, int]


class BatchState(Enum):
    OPEN = "open"  # taking records
    SEALED = "sealed"  # handed to the flush: nothing may be added


@dataclass(slots=True)
class Batch:
    """Records gathered for one transaction, with the next offset of every partition."""

    max_records: int
    max_age_s: float
    clock: Callable[[], float] = time.monotonic
    started_at: float = field(default=0.0)
    state: BatchState = BatchState.OPEN
    events: list[Decoded] = field(default_factory=list)
    poison: list[Poison] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    size: int = 0

    def add(self, item: Decoded | Poison) -> None:
        if self.state is not BatchState.OPEN:
            raise RuntimeError(f"cannot add to a {self.state.value} batch")
        if self.size == 0:
            self.started_at = self.clock()
        record: Record = item.record
        self.next_offsets[(record.topic, record.partition)] = record.offset + 1
        if isinstance(item, Poison):
            self.poison.append(item)
        else:
            self.events.append(item)
        self.size += 1

    def should_flush(self) -> bool:
        if self.size == 0:
            return False
        return self.size >= self.max_records or self.clock() - self.started_at >= self.max_age_s

    def redecode_units(self, decode: Callable[[Record], Decoded | Poison]) -> int:
        """Decode again the records poisoned by their unit (after the unit registry was
        reloaded: a unit loaded a moment ago is valid now). Returns how many became events;
        events stay in each partition's order."""
        kept: list[Poison] = []
        recovered: list[Decoded] = []
        for item in self.poison:
            again = decode(item.record) if item.unit_problem else item
            if isinstance(again, Decoded):
                recovered.append(again)
            else:
                kept.append(again)
        if recovered:
            self.poison = kept
            self.events = sorted(
                [*self.events, *recovered], key=lambda e: (e.record.topic, e.record.partition, e.record.offset)
            )
        return len(recovered)

    def seal(self) -> "Batch":
        self.state = BatchState.SEALED
        return self

    def unique_new(self, already_seen: set[bytes]) -> list[Decoded]:
        """The batch's events minus those already counted and minus repeats within it."""
        seen = set(already_seen)
        out = []
        for event in self.events:
            if event.event_key in seen:
                continue
            seen.add(event.event_key)
            out.append(event)
        return out
