"""What the aggregator's flush needs from the outside world, as small Protocols.

The PostgreSQL adapter (``adapters/postgres.py``) and the Kafka adapter
(``adapters/kafka.py``) implement them for production; the unit tests implement them in
memory (``tests/support/aggregator_fakes.py``) to test the flush sequence without servers.
"""

import datetime as dt
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from schemas.streams import KpiUpdate
from services.aggregator.domain.claims import Claim, PartitionInfo, Position, TopicPartition
from services.aggregator.domain.decode import Poison
from services.aggregator.domain.fold import Effects, States

# (generation, expected stored offset, next offset) of a partition a batch moves forward
OffsetMove = tuple[int, int, int]


class StaleAssignment(Exception):
    """Another consumer claimed a partition of this batch; the batch must be dropped."""


class PublishFailed(Exception):
    """The broker did not acknowledge a record that had to be durable before going on."""


class BatchTransaction(Protocol):
    """One database transaction of one batch. Nothing it does is visible until it commits,
    and all of it is discarded if the transaction does not."""

    async def advance_offsets(self, moves: dict[TopicPartition, OffsetMove]) -> None:
        """Compare-and-set each partition's stored offset; StaleAssignment if one fails."""

    async def record_seen(self, keys: list[bytes], today: dt.date) -> set[bytes]:
        """Record deduplication keys; return those that were already recorded."""

    async def load_states(self, ids: dict[str, set[str]]) -> States:
        """Lock and read the stored state of these entities, per family."""

    async def write(self, effects: Effects) -> None:
        """Write entity states and counter deltas."""


class CounterStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[BatchTransaction]:
        """A transaction that commits when the block exits normally, else rolls back."""


class OffsetStore(Protocol):
    async def claim(self, infos: list[PartitionInfo]) -> dict[TopicPartition, Claim]:
        """Take partitions over: bump their generations and decide where to read from."""

    async def stored_positions(self, partitions: list[TopicPartition]) -> dict[TopicPartition, Position]:
        """(generation, next offset) of partitions as the store holds them."""


class DeadLetterPublisher(Protocol):
    async def publish(self, poison: list[Poison]) -> None:
        """Copy poison records to the dead-letter topic; PublishFailed unless every copy is
        acknowledged."""


class UpdatesPublisher(Protocol):
    async def publish(self, updates: list[KpiUpdate]) -> None:
        """Tell alerts what changed (best effort: a lost update delays an alert, it never
        corrupts a number)."""
