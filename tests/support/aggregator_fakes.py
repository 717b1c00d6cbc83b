"""In-memory implementations of the aggregator's ports, in the manner of cosmicpython's fakes.

They keep what a real store keeps (offsets with generations, seen keys, entity states,
counters) and apply a transaction only when it commits, so atomicity is observable; every
call is appended to one shared ``log``, so the order of steps is observable too.
"""

import contextlib
import copy
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from schemas.streams import KpiUpdate
from services.aggregator.domain.claims import Claim, PartitionInfo, Position, TopicPartition
from services.aggregator.domain.decode import Poison
from services.aggregator.domain.fold import Effects, States
from services.aggregator.ports import OffsetMove, PublishFailed, StaleAssignment


@dataclass
class Data:
    """What the fake database holds."""

    offsets: dict[TopicPartition, Position] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    hourly: Counter[tuple[Any, ...]] = field(default_factory=Counter)


class FakeTransaction:
    def __init__(self, data: Data, log: list[str], fail_on: str | None) -> None:
        self.data = data  # a private copy, published on commit
        self.log = log
        self.fail_on = fail_on

    def _step(self, name: str) -> None:
        self.log.append(name)
        if self.fail_on == name:
            raise OSError(f"the database went away during {name}")

    async def advance_offsets(self, moves: dict[TopicPartition, OffsetMove]) -> None:
        self._step("advance_offsets")
        for tp, (generation, expected, nxt) in sorted(moves.items()):
            if self.data.offsets.get(tp) != (generation, expected):
                raise StaleAssignment(f"{tp} is at {self.data.offsets.get(tp)}, not {(generation, expected)}")
            self.data.offsets[tp] = (generation, nxt)

    async def record_seen(self, keys: list[bytes], today: dt.date) -> set[bytes]:
        self._step("record_seen")
        already = {k for k in keys if k in self.data.seen}
        self.data.seen.update(keys)
        return already

    async def load_states(self, ids: dict[str, set[str]]) -> States:
        self._step("load_states")
        return {f: {i: s for i, s in self.data.states.get(f, {}).items() if i in wanted} for f, wanted in ids.items()}

    async def write(self, effects: Effects) -> None:
        self._step("write")
        for family, states in effects.entities.items():
            self.data.states.setdefault(family, {}).update(states)
        self.data.hourly.update(effects.hourly)


class FakeStore:
    """Both ``CounterStore`` and ``OffsetStore``: one database."""

    def __init__(self, log: list[str]) -> None:
        self.data = Data()
        self.log = log
        self.fail_on: str | None = None  # a transaction step that raises OSError
        self.commits = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTransaction]:
        self.log.append("begin")
        work = copy.deepcopy(self.data)
        yield FakeTransaction(work, self.log, self.fail_on)
        self.data = work  # reached only when the block did not raise: commit
        self.commits += 1
        self.log.append("commit")

    async def claim(self, infos: list[PartitionInfo]) -> dict[TopicPartition, Claim]:
        claims = {}
        for info in infos:
            tp = (info.topic, info.partition)
            generation, offset = self.data.offsets.get(tp, (0, info.low))
            self.data.offsets[tp] = (generation + 1, offset)
            claims[tp] = Claim(offset, generation + 1, False)
        return claims

    async def stored_positions(self, partitions: list[TopicPartition]) -> dict[TopicPartition, Position]:
        if self.fail_on == "stored_positions":
            raise OSError("the database went away")
        return {tp: self.data.offsets[tp] for tp in partitions if tp in self.data.offsets}


class FakeDeadLetters:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.published: list[Poison] = []
        self.fail = False

    async def publish(self, poison: list[Poison]) -> None:
        self.log.append("dead_letters")
        if self.fail:
            raise PublishFailed("the broker did not acknowledge the dead letters")
        self.published.extend(poison)


class FakeUpdates:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.published: list[KpiUpdate] = []

    async def publish(self, updates: list[KpiUpdate]) -> None:
        self.log.append("kpi_updates")
        self.published.extend(updates)
