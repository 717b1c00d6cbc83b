"""Partition claims: where a consumer that takes a partition over starts reading. Pure.

A partition is *claimed* on assignment: the claim bumps its generation in the store, and
every batch commit compares the generation and the offset it started from (compare-and-set),
so a consumer that lost the partition to another cannot commit stale work.
"""

from dataclasses import dataclass

TopicPartition = tuple[str, int]
Position = tuple[int, int]  # (generation, next offset to read) of a claimed partition


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """What the broker says about an assigned partition."""

    topic: str
    partition: int
    topic_id: str | None
    low: int  # first offset still in the log
    high: int  # offset the next record will get (-1: the broker did not say)


@dataclass(frozen=True, slots=True)
class Claim:
    start: int  # where to read from
    generation: int
    reset: bool  # the log restarted below the stored offset (or the topic was recreated)


def resolve_start(stored: int | None, stored_topic_id: str | None, info: PartitionInfo) -> tuple[int, bool]:
    """Broker-reset rule: where to start reading a partition, and whether it was reset.

    - No stored offset: the start of the retained log.
    - The topic id changed (the topic was deleted and recreated - which is also what an
      empty, restarted embedded broker amounts to once its topics are provisioned again):
      the log is a new one; read it from its start instead of skipping it as "already seen".
    - No topic id known on one side: the log is taken as new when it now ends below the
      stored offset. (Only a fallback: Tansu 0.6 reports a partition's end as the base
      offset of its last record batch + 1, so its end offset is too low whenever that batch
      holds several records; with a topic id that number is not needed.)
    - A stored offset below the log start (retention deleted unread records): the log start.
    - Otherwise the stored offset.
    A false "reset" costs a re-read that deduplication makes harmless; a missed one would
    skip events, which is why doubt resolves towards re-reading.
    """
    if stored is None:
        return info.low, False
    if stored_topic_id is not None and info.topic_id is not None:
        if stored_topic_id != info.topic_id:
            return info.low, True
    elif 0 <= info.high < stored:  # high < 0: the broker did not say
        return info.low, True
    return max(stored, info.low), False


def positions_after_failure(
    current: dict[TopicPartition, Position], stored: dict[TopicPartition, Position]
) -> tuple[dict[TopicPartition, Position], list[TopicPartition]]:
    """Where to read again after a batch that did not commit: the stored offsets are the
    truth, not the ones in memory (a commit acknowledged with ``synchronous_commit = off`` is
    lost if PostgreSQL crashes before writing it, and a commit whose acknowledgement was lost
    did happen). A partition whose stored generation changed was claimed by another consumer:
    it is dropped (the rebalance revokes it). Partitions the store did not answer for keep
    their position in memory. Returns (positions, partitions whose offset moved)."""
    positions: dict[TopicPartition, Position] = {}
    moved: list[TopicPartition] = []
    for tp, (generation, offset) in current.items():
        if tp not in stored:
            positions[tp] = (generation, offset)
            continue
        stored_generation, stored_offset = stored[tp]
        if stored_generation != generation:
            continue
        if stored_offset != offset:
            moved.append(tp)
        positions[tp] = (generation, stored_offset)
    return positions, moved


def positions_after_commit(
    positions: dict[TopicPartition, Position], moves: dict[TopicPartition, tuple[int, int, int]]
) -> None:
    """Advance the positions in memory by a committed batch's moves (generation, expected
    offset, next offset) - only where the generation is still the batch's. A partition this
    process claimed again while the batch was committing (a rebalance inside the read that
    ran beside the commit) already holds the new generation and the offset the claim read
    after the commit; writing the batch's older generation over it would fail the next batch
    as "claimed by another consumer" and then drop the partition for good."""
    for tp, (generation, _expected, nxt) in moves.items():
        current = positions.get(tp)
        if current is not None and current[0] == generation:
            positions[tp] = (generation, nxt)
