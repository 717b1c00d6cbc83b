"""How each unit behaves, and when people use services.

The founding article names the districts that were ahead - Cẩm Thủy, Hà Trung, Quảng Xương,
Như Thanh, Như Xuân - and those lagging on electronic documents - Hậu Lộc, Nông Cống,
Thọ Xuân. Good districts are mostly electronic and on time; lagging ones mostly on paper and
late; every other district sits in between, drawn from the seed.

Events come from communes. An old commune (until 2025-06-30) behaves like the district it
belonged to, give or take a little; a commune of 2025 like the old communes it was formed
from, weighted by what each brought (its share of the old commune × that commune's weight),
so a place behaves the same on 30 June and on 1 July 2025. Communes formed mostly from a
lagging district keep incoming documents entirely off the system, as their districts did:
their silence alerts fire in the dev stack (``docs/alerts.md``). Volume follows population:
a 2025 commune's own figure; an old commune's share of its district's 2019 census figure.
"""

import datetime as dt
import random
from dataclasses import dataclass, replace

from services.core.history import main_former
from services.core.units import Unit, UnitRegistry

GOOD_UNITS = frozenset({"390", "392", "406", "403", "402"})
LAGGING_UNITS = frozenset({"400", "404", "395"})
MOUNTAIN_UNITS = frozenset({"384", "385", "386", "387", "388"})
_RATES = ("digital", "on_time", "signed", "on_system", "cashless")


@dataclass(frozen=True, slots=True)
class UnitProfile:
    code: str
    weight: float  # relative volume of activity
    digital: float  # probability that a use goes through a digital channel
    on_time: float  # probability that a dossier is resolved within its due time
    signed: float  # probability that an outgoing document is digitally signed
    on_system: float  # probability that an incoming document is handled on the system
    cashless: float  # probability that a payment is not cash


def _clamp(x: float) -> float:
    return min(0.99, max(0.01, x))


def seeded(seed: int, *parts: object) -> random.Random:
    """A generator of its own for one purpose (a district, a commune, an hour): draws for one
    never shift another's."""
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def profile_for(unit: Unit, rng: random.Random) -> UnitProfile:
    """The behaviour of one district-level unit (deterministic given the generator)."""
    if unit.code in GOOD_UNITS:
        base = rng.uniform(0.84, 0.94)
    elif unit.code in LAGGING_UNITS:
        base = rng.uniform(0.12, 0.24)
    else:
        base = rng.uniform(0.42, 0.70)
    weight = 3.0 if unit.kind == "city" else 1.5 if unit.kind == "town" else 1.0
    if unit.code in MOUNTAIN_UNITS:
        weight = 0.5
    return UnitProfile(
        code=unit.code,
        weight=weight,
        digital=_clamp(base + rng.uniform(-0.08, 0.05)),
        on_time=_clamp(0.35 + base * 0.64 + rng.uniform(-0.03, 0.03)),
        signed=_clamp(base + rng.uniform(-0.05, 0.07)),
        # lagging units keep incoming documents entirely on paper (the draw is still made so
        # that every other unit's profile stays the same)
        on_system=_clamp(base + rng.uniform(-0.05, 0.05)) * (unit.code not in LAGGING_UNITS),
        cashless=_clamp(base * 0.8 + rng.uniform(-0.05, 0.05)),
    )


class Profiles:
    """The profile of every commune-level unit of a registry, a pure function of the seed.

    ``district(unit)``: the district an old commune belonged to first, or the former district
    a 2025 commune was formed mostly from (``services.core.history.main_former``).
    """

    def __init__(self, registry: UnitRegistry, seed: int) -> None:
        self.registry = registry
        self.seed = seed
        self._profiles: dict[str, UnitProfile] = {}
        self._districts: dict[str, Unit | None] = {}
        self._members: dict[str, int] = {}  # district key → how many communes it had
        for unit in registry.all_units():
            if unit.level == 3 and (home := self._home(unit)) is not None:
                self._members[home.key] = self._members.get(home.key, 0) + 1

    def of(self, unit: Unit) -> UnitProfile:
        found = self._profiles.get(unit.key)
        if found is None:
            found = self._profiles[unit.key] = self._build(unit)
        return found

    def district(self, unit: Unit) -> Unit | None:
        if unit.key not in self._districts:
            home = self._home(unit)
            self._districts[unit.key] = home if home is not None else main_former(self.registry, unit)
        return self._districts[unit.key]

    def lagging(self, unit: Unit) -> bool:
        district = self.district(unit)
        return district is not None and district.code in LAGGING_UNITS

    def _home(self, unit: Unit) -> Unit | None:
        """The district-level parent of an old commune's first span."""
        for span in unit.parents:
            day = span.valid_to or span.valid_from or unit.valid_to
            parent = self.registry.get(span.parent_code, day) if span.parent_code else None
            if parent is not None and parent.level == 2:
                return parent
        return None

    def _district_profile(self, district: Unit) -> UnitProfile:
        key = f"district:{district.key}"
        if key not in self._profiles:
            self._profiles[key] = profile_for(district, seeded(self.seed, "district", district.code))
        return self._profiles[key]

    def _build(self, unit: Unit) -> UnitProfile:
        if unit.level == 2:
            return self._district_profile(unit)
        home = self._home(unit)
        if home is not None:
            return self._old_commune(unit, home)
        predecessors = self.registry.predecessors(unit)
        if predecessors:
            return self._formed(unit, [(self.of(old), self.registry.weight(link)) for old, link in predecessors])
        rng = seeded(self.seed, "unit", unit.key)  # a unit with neither district nor history
        return replace(profile_for(unit, rng), weight=float(unit.population or 10_000))

    def _old_commune(self, unit: Unit, home: Unit) -> UnitProfile:
        district = self._district_profile(home)
        rng = seeded(self.seed, "commune", unit.key)
        population = self.registry.population(home, home.valid_to or dt.date.max) or 100_000
        jittered = {name: _clamp(getattr(district, name) + rng.uniform(-0.04, 0.04)) for name in _RATES}
        if home.code in LAGGING_UNITS:
            jittered["on_system"] = 0.0
        return UnitProfile(code=unit.code, weight=population / self._members.get(home.key, 1), **jittered)

    def _formed(self, unit: Unit, parts: list[tuple[UnitProfile, float]]) -> UnitProfile:
        """A blend of the predecessors' behaviour, each weighted by the volume it brought."""
        brought = [(p, share * p.weight) for p, share in parts]
        total = sum(w for _, w in brought) or 1.0
        rates = {name: sum(getattr(p, name) * w for p, w in brought) / total for name in _RATES}
        if self.lagging(unit):
            rates["on_system"] = 0.0
        return UnitProfile(code=unit.code, weight=float(unit.population or total), **rates)


def activity(sector: str, local_hour: int, weekday: int) -> float:
    """Relative activity of a sector at a local hour (0-23) and weekday (0 Monday).

    Offices work 7:30-11:30 and 13:30-17:00 on weekdays; buses run 5:00-21:00 every day;
    museums are busiest at weekends; e-learning peaks in the evening.
    """
    weekend = weekday >= 5
    if sector == "transport":
        if 6 <= local_hour <= 8 or 16 <= local_hour <= 18:
            return 2.0
        return 1.0 if 5 <= local_hour <= 21 else 0.05
    if sector == "culture":
        open_hours = 8 <= local_hour <= 17
        return (2.0 if weekend else 1.0) if open_hours else 0.05
    office = (7 <= local_hour <= 11) or (13 <= local_hour <= 16)
    if sector == "education" and 19 <= local_hour <= 22:
        return 0.8
    if weekend:
        return 0.3 if (sector == "health" and office) else 0.03
    return 1.5 if office else 0.08
