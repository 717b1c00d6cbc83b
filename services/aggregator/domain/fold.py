"""Fold a batch's new events into counter deltas and entity states. Pure.

The KPI rules themselves live in the core (``services.core.kpis``): stateless usage events
add to counters in their own hour; dossiers and documents are entities whose counters are a
function of their state in the hour they were received or registered, so an event changes
``contribution(new) - contribution(old)``; projects are entities without counters. Deltas
are pre-aggregated per key and expanded to every ancestor the unit had at that hour, and to
the day and month of that hour in Vietnam.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.events import documents as document_events
from schemas.events import dossiers as dossier_events
from schemas.events import projects as project_events
from schemas.events.base import EventData
from services.aggregator.domain.decode import Decoded
from services.core.calendar import day_number, day_of_hour
from services.core.kpis import documents, dossiers, projects
from services.core.kpis.usage import RULES
from services.core.units import UnitRegistry

LeafKey = tuple[str, str, int, str]  # (unit, sector, hour, metric)
HourKey = tuple[str, str, str, int]  # (unit, metric, sector, hour since epoch)
DateKey = tuple[str, str, str, Any]  # (unit, metric, sector, local day or month start)
Lineage = Callable[[str, int], tuple[str, ...]]  # (unit, hour) → the unit and its ancestors then


def registry_lineage(registry: UnitRegistry) -> Lineage:
    """(unit, hour) → the unit and the ancestors it had on that local day, remembered per
    (unit, day)."""
    memo: dict[tuple[str, int], tuple[str, ...]] = {}

    def lineage(code: str, hour: int) -> tuple[str, ...]:
        key = (code, day_number(hour))
        found = memo.get(key)
        if found is None:
            found = memo[key] = registry.lineage(code, day_of_hour(hour))
        return found

    return lineage


@dataclass(frozen=True, slots=True)
class EntityKind:
    """How one entity family folds: which events, keyed how, and what it counts."""

    name: str
    events: tuple[type[EventData], ...]
    key_field: str
    new: Callable[[str, str, str], Any]
    apply: Callable[[Any, EventData, Any, str, str], Any]
    contribution: Callable[[Any], dict[str, int]] | None = None
    hour_of: Callable[[Any], int | None] | None = None

    def key(self, data: EventData) -> str:
        value: str = getattr(data, self.key_field)
        return value


ENTITIES: tuple[EntityKind, ...] = (
    EntityKind(
        "dossiers",
        dossier_events.DOSSIER_EVENTS,
        "dossier_id",
        dossiers.new_state,
        dossiers.apply,
        dossiers.contribution,
        dossiers.hour_of,
    ),
    EntityKind(
        "documents",
        document_events.DOCUMENT_EVENTS,
        "document_id",
        documents.new_state,
        documents.apply,
        documents.contribution,
        documents.hour_of,
    ),
    EntityKind("projects", project_events.PROJECT_EVENTS, "project_id", projects.ProjectState, projects.apply),
)
ENTITY_OF_TYPE: dict[type[EventData], EntityKind] = {model: kind for kind in ENTITIES for model in kind.events}

# The stored state of the entities a batch touches, per family: {family: {id: state}}.
States = dict[str, dict[str, Any]]


def entity_ids(events: Iterable[Decoded]) -> dict[str, set[str]]:
    """The ids of every entity the events touch, per family (what to load before folding)."""
    ids: dict[str, set[str]] = {kind.name: set() for kind in ENTITIES}
    for event in events:
        kind = ENTITY_OF_TYPE.get(type(event.data))
        if kind is not None:
            ids[kind.name].add(kind.key(event.data))
    return ids


@dataclass(slots=True)
class Effects:
    """What a batch changes: counter deltas at three grains and the changed entity states."""

    hourly: dict[HourKey, int] = field(default_factory=dict)
    daily: dict[DateKey, int] = field(default_factory=dict)
    monthly: dict[DateKey, int] = field(default_factory=dict)
    entities: States = field(default_factory=dict)
    # (unit, sector, metric, hour) for the units named by events and their ancestors then: what changed, for alerts
    touched: set[tuple[str, str, str, int]] = field(default_factory=set)

    @property
    def dossiers(self) -> dict[str, dossiers.DossierState]:
        return self.entities.get("dossiers", {})

    @property
    def documents(self) -> dict[str, documents.DocumentState]:
        return self.entities.get("documents", {})

    @property
    def projects(self) -> dict[str, projects.ProjectState]:
        return self.entities.get("projects", {})


def fold(events: list[Decoded], stored: States, lineage: Lineage) -> Effects:
    """Fold new (deduplicated) events, in order, into counter deltas and entity states.

    ``stored`` holds the stored state of every entity the events touch (missing: not seen
    before); it is not modified.
    """
    leaf: defaultdict[LeafKey, int] = defaultdict(int)
    now: States = {kind.name: dict(stored.get(kind.name, {})) for kind in ENTITIES}
    changed: dict[str, set[str]] = {kind.name: set() for kind in ENTITIES}
    for event in events:
        data = event.data
        sector = event.spec.sector.value
        rule = RULES.get(type(data))
        if rule is not None:
            unit, hour = event.unit, event.hour
            for metric, amount in rule(data):
                if amount:
                    leaf[(unit, sector, hour, metric)] += amount
            continue
        kind = ENTITY_OF_TYPE.get(type(data))
        if kind is None:
            continue
        key = kind.key(data)
        states = now[kind.name]
        before = states.get(key)
        after = kind.apply(before or kind.new(key, sector, event.unit), data, event.time, sector, event.unit)
        if kind.contribution is not None:
            _entity_delta(leaf, kind, before, after)
        states[key] = after
        changed[kind.name].add(key)
    effects = expand(leaf, lineage)
    effects.entities = {name: {k: now[name][k] for k in keys} for name, keys in changed.items() if keys}
    return effects


def _entity_delta(leaf: defaultdict[LeafKey, int], kind: EntityKind, before: Any, after: Any) -> None:
    assert kind.contribution is not None and kind.hour_of is not None
    old_hour, new_hour = kind.hour_of(before), kind.hour_of(after)
    if old_hour is not None:
        for metric, amount in kind.contribution(before).items():
            leaf[(before.unit_code, before.sector, old_hour, metric)] -= amount
    if new_hour is not None:
        for metric, amount in kind.contribution(after).items():
            leaf[(after.unit_code, after.sector, new_hour, metric)] += amount


def expand(leaf: dict[LeafKey, int], lineage: Lineage) -> Effects:
    """Spread leaf deltas to every ancestor the unit had at that hour, and to day and month
    grains; drop zeros."""
    hourly: defaultdict[HourKey, int] = defaultdict(int)
    daily: defaultdict[DateKey, int] = defaultdict(int)
    monthly: defaultdict[DateKey, int] = defaultdict(int)
    touched = set()
    for (unit, sector, hour, metric), amount in leaf.items():
        if not amount:
            continue
        touched.add((unit, sector, metric, hour))
        day = day_of_hour(hour)
        month = day.replace(day=1)
        for code in lineage(unit, hour):
            hourly[(code, metric, sector, hour)] += amount
            daily[(code, metric, sector, day)] += amount
            monthly[(code, metric, sector, month)] += amount
    changed = {k: v for k, v in hourly.items() if v}
    # every unit whose value changed is announced, so a district's or the province's alert
    # is judged as well as the commune's
    touched.update((code, sector, metric, hour) for (code, metric, sector, hour) in changed)
    return Effects(
        hourly=changed,
        daily={k: v for k, v in daily.items() if v},
        monthly={k: v for k, v in monthly.items() if v},
        touched=touched,
    )
