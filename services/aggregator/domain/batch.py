"""A batch of records and the effect it has on counters and entity state.

Contract: :meth:`Batch.add` takes records in the order each partition delivered them;
:meth:`Batch.should_flush` says when the batch is big or old enough; the adapter's flush
then deduplicates the batch's events against the store and calls :func:`aggregate` on the
new ones, and writes the effects together with :attr:`Batch.next_offsets` in one
transaction. Nothing here performs I/O.
"""

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from schemas.events import dossiers as dossier_events
from schemas.events import projects as project_events
from services.aggregator.domain import dossiers as dossier_domain
from services.aggregator.domain import projects as project_domain
from services.aggregator.domain.decode import Decoded, Poison, Record
from services.aggregator.domain.rules import RULES

EPOCH_DAY = dt.date(1970, 1, 1)
LeafKey = tuple[str, str, int, str]  # (unit, sector, hour, metric)
HourKey = tuple[str, str, str, int]  # (unit, metric, sector, hour since epoch)
DateKey = tuple[str, str, str, dt.date]  # (unit, metric, sector, local day or month start)
TopicPartition = tuple[str, int]


class BatchState(Enum):
    OPEN = "open"
    FLUSHING = "flushing"
    COMMITTED = "committed"
    FAILED = "failed"


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


def dossier_ids(events: Iterable[Decoded]) -> set[str]:
    return {e.data.dossier_id for e in events if isinstance(e.data, dossier_events.DOSSIER_EVENTS)}  # type: ignore[attr-defined]


def project_ids(events: Iterable[Decoded]) -> set[str]:
    return {e.data.project_id for e in events if isinstance(e.data, project_events.PROJECT_EVENTS)}  # type: ignore[attr-defined]


@dataclass(slots=True)
class Effects:
    """What a batch changes: counter deltas at three grains and entity rows."""

    hourly: dict[HourKey, int] = field(default_factory=dict)
    daily: dict[DateKey, int] = field(default_factory=dict)
    monthly: dict[DateKey, int] = field(default_factory=dict)
    dossiers: dict[str, dossier_domain.DossierState] = field(default_factory=dict)
    projects: dict[str, project_domain.ProjectState] = field(default_factory=dict)
    # (unit, sector, metric, hour) of the units named by events: what changed, for alerts
    touched: set[tuple[str, str, str, int]] = field(default_factory=set)


def local_day(hour: int) -> dt.date:
    """Calendar day in Vietnam (UTC+7) of an hour since the epoch."""
    return EPOCH_DAY + dt.timedelta(days=(hour + 7) // 24)


def aggregate(
    events: list[Decoded],
    dossier_states: dict[str, dossier_domain.DossierState],
    project_states: dict[str, project_domain.ProjectState],
    lineage: Callable[[str], tuple[str, ...]],
) -> Effects:
    """Fold new (deduplicated) events, in order, into counter deltas and entity states.

    ``dossier_states``/``project_states`` hold the stored state of every entity the events
    touch (missing: not seen before). Deltas are pre-aggregated per key and expanded to
    every ancestor of the unit and to day and month grains.
    """
    leaf: defaultdict[LeafKey, int] = defaultdict(int)
    dossier_now = dict(dossier_states)
    project_now = dict(project_states)
    changed_dossiers: set[str] = set()
    changed_projects: set[str] = set()
    rules = RULES
    for event in events:
        data = event.data
        rule = rules.get(type(data))
        sector = event.spec.sector.value
        if rule is not None:
            unit, hour = event.unit, event.hour
            for metric, amount in rule(data):
                if amount:
                    leaf[(unit, sector, hour, metric)] += amount
        elif isinstance(data, dossier_events.DOSSIER_EVENTS):
            did: str = data.dossier_id  # type: ignore[attr-defined]
            before = dossier_now.get(did)
            after = dossier_domain.apply(
                before or dossier_domain.new_state(did, sector, event.unit), data, event.time, sector, event.unit
            )
            _dossier_delta(leaf, before, after)
            dossier_now[did] = after
            changed_dossiers.add(did)
        elif isinstance(data, project_events.PROJECT_EVENTS):
            pid: str = data.project_id  # type: ignore[attr-defined]
            current = project_now.get(pid) or project_domain.ProjectState(pid, sector, event.unit)
            project_now[pid] = project_domain.apply(current, data, event.time, sector, event.unit)
            changed_projects.add(pid)
    effects = expand(leaf, lineage)
    effects.dossiers = {d: dossier_now[d] for d in changed_dossiers}
    effects.projects = {p: project_now[p] for p in changed_projects}
    return effects


def _dossier_delta(
    leaf: defaultdict[LeafKey, int],
    before: dossier_domain.DossierState | None,
    after: dossier_domain.DossierState,
) -> None:
    old_hour, new_hour = dossier_domain.hour_of(before), dossier_domain.hour_of(after)
    if old_hour is not None and before is not None:
        for metric, amount in dossier_domain.contribution(before).items():
            leaf[(before.unit_code, before.sector, old_hour, metric)] -= amount
    if new_hour is not None:
        for metric, amount in dossier_domain.contribution(after).items():
            leaf[(after.unit_code, after.sector, new_hour, metric)] += amount


def expand(leaf: dict[LeafKey, int], lineage: Callable[[str], tuple[str, ...]]) -> Effects:
    """Spread leaf deltas to every ancestor unit and to day and month grains; drop zeros."""
    hourly: defaultdict[HourKey, int] = defaultdict(int)
    daily: defaultdict[DateKey, int] = defaultdict(int)
    monthly: defaultdict[DateKey, int] = defaultdict(int)
    touched = set()
    for (unit, sector, hour, metric), amount in leaf.items():
        if not amount:
            continue
        touched.add((unit, sector, metric, hour))
        day = local_day(hour)
        month = day.replace(day=1)
        for code in lineage(unit):
            hourly[(code, metric, sector, hour)] += amount
            daily[(code, metric, sector, day)] += amount
            monthly[(code, metric, sector, month)] += amount
    return Effects(
        hourly={k: v for k, v in hourly.items() if v},
        daily={k: v for k, v in daily.items() if v},
        monthly={k: v for k, v in monthly.items() if v},
        touched=touched,
    )
