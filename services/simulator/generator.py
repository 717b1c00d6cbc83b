"""A deterministic generator of the events sector systems send, at commune level.

Events come from the commune-level units valid at each event's time: the 548 old communes
until 2025-06-30, the 166 communes and wards from 2025-07-01 - never from a district. Each
hour's events are a pure function of (seed, hour, rate): the hour draws from a generator of
its own and numbers its events itself (:mod:`services.simulator.events`), so generating an
hour twice gives the same events with the same ids, whatever was generated before.

Events come out in *delivery* order: a late event carries its real event time but is
delivered hours or days later; a duplicate is the same event (same ``source`` and ``id``)
delivered again; dossiers live through received → (supplement requested → resumed) →
resolved → paid → rated over days; projects report weekly (:mod:`.projects`). What an hour
scheduled for later stays in a heap until delivered; :meth:`SectorSystems.pending` and
:meth:`SectorSystems.restore` carry it across runs (:mod:`.state`).
"""

import datetime as dt
import heapq
import itertools
import math
import random
from collections.abc import Iterable, Iterator
from typing import Any

from services.core.calendar import VN
from services.core.history import heir
from services.core.units import Unit, UnitRegistry
from services.simulator.density import EGOV_KINDS, FULL, Density
from services.simulator.events import HourBatch, Scheduled
from services.simulator.profiles import Profiles, UnitProfile, activity
from services.simulator.projects import is_report_hour, portfolio, report

# Relative frequency of each kind of activity per sector (per unit of weight and activity).
MIX: dict[str, dict[str, float]] = {
    "education": {"enrolment": 3, "elearning": 8, "fee": 3, "dossier": 0.6, "incoming": 0.6, "outgoing": 0.5},
    "health": {
        "appointment": 6,
        "checkin": 8,
        "closed": 7,
        "telemedicine": 0.5,
        "dossier": 0.4,
        "incoming": 0.6,
        "outgoing": 0.5,
    },
    "transport": {"fare": 40, "departure": 4, "parking": 5, "dossier": 0.5, "incoming": 0.3, "outgoing": 0.3},
    "culture": {"ticket": 4, "entry": 6, "library": 2, "dossier": 0.3, "incoming": 0.4, "outgoing": 0.3},
}
_MIX_TOTAL = sum(sum(kinds.values()) for kinds in MIX.values())
# Mean of activity() over a week, weighted by the mix: normalises volume to events/hour.
_WEEK_ACTIVITY = {sector: sum(activity(sector, h, d) for h in range(24) for d in range(7)) / 168 for sector in MIX}


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


class SectorSystems:
    """Simulated sector systems of every commune-level unit valid at the simulated time.

    ``units``: a :class:`UnitRegistry` (with its successions: 2025 communes behave like the
    communes they were formed from) or a list of units. ``events_per_hour`` is the average
    rate over a week at full density (office hours are busier); ``density`` thins older hours
    (:class:`~services.simulator.density.Density`); ``duplicate_rate`` and ``late_rate`` are
    per-event probabilities. Generation starts with the hour containing ``start``.
    """

    def __init__(
        self,
        units: UnitRegistry | Iterable[Unit],
        start: dt.datetime,
        *,
        seed: int = 1,
        events_per_hour: float = 20_000,
        duplicate_rate: float = 0.01,
        late_rate: float = 0.02,
        projects: bool = True,
        density: Density = FULL,
    ) -> None:
        self.registry = units if isinstance(units, UnitRegistry) else UnitRegistry.from_units(units)
        self.seed = seed
        self.start = start.astimezone(dt.UTC)
        self.events_per_hour = events_per_hour
        self.duplicate_rate = duplicate_rate
        self.late_rate = late_rate
        self.density = density
        self.profiles = Profiles(self.registry, seed)
        self.projects = portfolio(self.registry, self.profiles, seed) if projects else []
        self.next_hour = int(self.start.timestamp()) // 3600
        self._heap: list[Scheduled] = []
        self._pools: dict[dt.date, tuple[list[Unit], list[UnitProfile], list[float]]] = {}
        self._ends: dict[str, float] = {}
        self._heirs: dict[str, Unit | None] = {}

    # -- public --------------------------------------------------------------------------
    def until(self, end: dt.datetime) -> Iterator[dict[str, Any]]:
        """Every event delivered before ``end`` not yet returned, in delivery order."""
        end_ts = self.advance(end.timestamp())
        yield from self.pop(end_ts)

    def take(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` events (generating as many hours as needed)."""
        out: list[dict[str, Any]] = []
        idle_hours = 0
        while len(out) < count and idle_hours < 24 * 366:  # no unit left valid: stop
            before = len(out)
            horizon = dt.datetime.fromtimestamp((self.next_hour + 1) * 3600, dt.UTC)
            out.extend(itertools.islice(self.until(horizon), count - len(out)))
            idle_hours = 0 if len(out) > before else idle_hours + 1
        return out

    def advance(self, end: float, max_events: int | None = None) -> float:
        """Generate the hours that start before ``end`` (epoch seconds); with ``max_events``,
        stop after the hour that brings the events generated by this call to that many. Returns
        how far delivery may go now: ``end``, or the end of the last hour generated."""
        made = 0
        while self.next_hour * 3600 < end:
            batch = self.hour_events(self.next_hour)
            for item in batch:
                heapq.heappush(self._heap, item)
            self.next_hour += 1
            made += len(batch)
            if max_events is not None and made >= max_events:
                return min(end, self.next_hour * 3600.0)
        return end

    def pop(self, end: float) -> Iterator[dict[str, Any]]:
        """Events delivered before ``end`` (whose hours were generated), in delivery order."""
        if end > self.next_hour * 3600:
            raise ValueError("advance() to the end before popping up to it")
        while self._heap and self._heap[0].deliver_at < end:
            yield heapq.heappop(self._heap).event

    def pending(self) -> list[Scheduled]:
        """What generated hours scheduled and was not delivered yet (a copy)."""
        return sorted(self._heap)

    def restore(self, next_hour: int, pending: Iterable[Scheduled]) -> None:
        """Continue a previous run: hours before ``next_hour`` were generated and ``pending``
        is what they left to deliver."""
        self.next_hour = next_hour
        self._heap = list(pending)
        heapq.heapify(self._heap)

    # -- generation ----------------------------------------------------------------------
    def hour_events(self, hour: int) -> list[Scheduled]:
        """The events of one hour with their follow-ups: a pure function of (seed, hour, rate)."""
        batch = HourBatch(self.seed, hour, self.carrier, late_rate=self.late_rate, duplicate_rate=self.duplicate_rate)
        local = dt.datetime.fromtimestamp(hour * 3600, VN)
        units, profiles, cumulative = self._pool(local.date())
        if units:
            r = batch.rng
            usage, egov = self.density.scales(hour)
            for sector, kinds in MIX.items():
                level = activity(sector, local.hour, local.weekday()) / _WEEK_ACTIVITY[sector]
                for kind, freq in kinds.items():
                    scale = egov if kind in EGOV_KINDS else usage
                    count = _poisson(r, self.events_per_hour * level * freq / _MIX_TOTAL * scale)
                    if count == 0:
                        continue
                    for index in r.choices(range(len(units)), cum_weights=cumulative, k=count):
                        at = hour * 3600 + r.random() * 3600
                        batch.emit(sector, kind, units[index], profiles[index], at)
        if self.projects and is_report_hour(hour):
            report(batch, self.projects)
        return batch.scheduled

    def _pool(self, day: dt.date) -> tuple[list[Unit], list[UnitProfile], list[float]]:
        """The commune-level units valid on ``day``, their profiles and cumulative weights."""
        if day not in self._pools:
            units = self.registry.at_level(3, day)
            profiles = [self.profiles.of(u) for u in units]
            self._pools[day] = (units, profiles, list(itertools.accumulate(p.weight for p in profiles)))
        return self._pools[day]

    def carrier(self, unit: Unit, at: float) -> str | None:
        """The code that carries ``unit``'s events at ``at``: its own while it exists, then
        that of the unit that took over its open work; None when no unit did (a registry
        without successions), and then the event is not sent."""
        current: Unit | None = unit
        while current is not None and at >= self._end(current):
            if current.key not in self._heirs:
                self._heirs[current.key] = heir(self.registry, current)
            current = self._heirs[current.key]
        return None if current is None else current.code

    def _end(self, unit: Unit) -> float:
        """Epoch seconds of the local midnight after the unit's last day (inf: open)."""
        if unit.key not in self._ends:
            last = unit.valid_to
            self._ends[unit.key] = (
                math.inf
                if last is None
                else dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), VN).timestamp()
            )
        return self._ends[unit.key]
