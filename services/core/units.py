"""Administrative units as data: a hierarchy with validity dates.

Vietnam reorganises its units (the district level ended on 1 July 2025 and communes were
merged), so a unit carries ``valid_from``/``valid_to`` and the hierarchy is read *as of* a
date. Events are checked against the registry at their event time, and counters roll up to
the ancestors the unit had at that time, so history keeps its meaning.
"""

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from services.core.calendar import local_date

UnitKind = Literal["province", "city", "town", "district", "ward", "commune", "township"]

# Level in the hierarchy by kind: 1 province, 2 district level, 3 commune level.
LEVEL_OF_KIND: dict[str, int] = {
    "province": 1,
    "city": 2,
    "town": 2,
    "district": 2,
    "ward": 3,
    "commune": 3,
    "township": 3,
}
LEVEL_NAMES: dict[str, int] = {"province": 1, "district": 2, "commune": 3}


@dataclass(frozen=True, slots=True)
class Unit:
    """One administrative unit; ``valid_to`` is the last day it existed (inclusive)."""

    code: str
    name: str
    full_name: str
    kind: str
    parent_code: str | None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    population: int | None = None

    @property
    def level(self) -> int:
        return LEVEL_OF_KIND.get(self.kind, 3)

    def valid_on(self, day: dt.date) -> bool:
        """True when the unit existed on ``day``."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return not (self.valid_to is not None and day > self.valid_to)


@dataclass(slots=True)
class UnitRegistry:
    """Lookups over a set of units. Built from rows; immutable once built."""

    units: dict[str, Unit]
    _children: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        children: dict[str, list[str]] = {}
        for unit in self.units.values():
            if unit.parent_code:
                children.setdefault(unit.parent_code, []).append(unit.code)
        self._children = {k: sorted(v) for k, v in children.items()}

    @classmethod
    def from_units(cls, units: Iterable[Unit]) -> "UnitRegistry":
        return cls({u.code: u for u in units})

    def get(self, code: str) -> Unit | None:
        return self.units.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self.units

    def __len__(self) -> int:
        return len(self.units)

    def check(self, code: str, moment: dt.datetime) -> tuple[str, str] | None:
        """Return (error code, reason) when ``code`` cannot carry an event at ``moment``."""
        unit = self.units.get(code)
        if unit is None:
            return "unknown_unit", f"unknown administrative unit {code!r}"
        day = local_date(moment)
        if not unit.valid_on(day):
            span = f"{unit.valid_from or '…'} to {unit.valid_to or '…'}"
            return (
                "unit_not_valid",
                f"unit {code!r} ({unit.name}) did not exist on {day} (valid {span})",
            )
        return None

    def lineage(self, code: str, day: dt.date | None = None) -> tuple[str, ...]:
        """The unit and its ancestors, nearest first (``('390', '38')``)."""
        out: list[str] = []
        current: str | None = code
        while current is not None and current in self.units and current not in out:
            out.append(current)
            current = self.units[current].parent_code
        return tuple(out)

    def descendants(self, code: str) -> list[str]:
        """Every unit below ``code`` (any date), not including ``code`` itself."""
        out: list[str] = []
        stack = list(self._children.get(code, ()))
        while stack:
            child = stack.pop()
            out.append(child)
            stack.extend(self._children.get(child, ()))
        return sorted(out)

    def covers(self, ancestor: str, code: str) -> bool:
        """True when ``code`` is ``ancestor`` or lies below it."""
        return ancestor in self.lineage(code)

    def at_level(self, level: int, within: str | None = None) -> list[Unit]:
        """Units of one level (1 province, 2 district, 3 commune), optionally under ``within``."""
        candidates = (
            self.units.values()
            if within is None
            else [self.units[c] for c in [within, *self.descendants(within)] if c in self.units]
        )
        return sorted((u for u in candidates if u.level == level), key=lambda u: u.code)


def _date(value: str) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def load_units_csv(path: Path) -> list[Unit]:
    """Read units from a CSV with columns code,name,full_name,kind,parent_code,valid_from,valid_to
    (and optionally population)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Unit(
                code=row["code"].strip(),
                name=row["name"].strip(),
                full_name=row["full_name"].strip(),
                kind=row["kind"].strip(),
                parent_code=row["parent_code"].strip() or None,
                valid_from=_date(row.get("valid_from", "").strip()),
                valid_to=_date(row.get("valid_to", "").strip()),
                population=int(row["population"]) if row.get("population") else None,
            )
            for row in csv.DictReader(handle)
        ]
