"""Administrative units as data: codes with validity intervals, effective-dated parents, and
the succession of units across reorganisations.

Vietnam reorganises its units: the district level ended on 1 July 2025 and 548 communes
became 166, every new commune reusing the code of one of its predecessors (``14758`` is
Phường Đông Thọ until 2025-06-30 and Phường Hàm Rồng, a larger territory, from
2025-07-01). So a unit (:class:`Unit`) is a code *and* its validity interval - a version of
the code - and its parent is effective-dated too (Đông Sơn's communes moved from district
405 to 380 on 2025-01-01). An event belongs to the unit its code denoted on the event's
local date, and rolls up along the parents valid that day (:meth:`UnitRegistry.lineage`).

The registry is built from rows of unit files (``code,name,full_name,kind,parent_code,
valid_from,valid_to``; dates inclusive, empty = open), succession links (``old_code,
new_code,share,effective[,weight]``) and population figures. Consecutive rows of a code with
the same name and kind form one unit whose parent changes; a succession link effective on
a row's first day, or a change of name or kind, starts a new unit. Pure: no I/O but reading
the files this module is asked to read.
"""

import csv
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar

from services.core.calendar import local_date

UnitKind = Literal["province", "city", "town", "district", "ward", "commune", "township"]
Share = Literal["full", "partial"]

# Level in the hierarchy by kind: 1 province, 2 district level, 3 commune level - whatever
# depth a unit has in the tree (today's communes sit directly under the province).
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
ONE_DAY = dt.timedelta(days=1)
T = TypeVar("T")


class UnitDataError(ValueError):
    """Unit, succession or population data that contradict themselves."""


@dataclass(frozen=True, slots=True)
class UnitRow:
    """One row of a unit file: what a code denoted, and under which parent, over an interval."""

    code: str
    name: str
    full_name: str
    kind: str
    parent_code: str | None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


@dataclass(frozen=True, slots=True)
class ParentSpan:
    parent_code: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None

    def covers(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class Succession:
    """Part (``partial``) or all (``full``) of an old unit went into a new one on ``effective``.
    ``weight``: the share of the old unit's counts restated onto the new one (default: split
    equally among the new units it went into)."""

    old_code: str
    new_code: str
    share: Share
    effective: dt.date
    weight: float | None = None


@dataclass(frozen=True, slots=True)
class PopulationFigure:
    """Residents of the unit a code denotes on ``as_of`` (indicative figures)."""

    code: str
    as_of: dt.date
    population: int
    area_km2: float | None = None


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit: a code over its validity interval (``valid_to`` inclusive), with parents."""

    code: str
    name: str
    full_name: str
    kind: str
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    parents: tuple[ParentSpan, ...] = ()
    population: int | None = None
    area_km2: float | None = None

    @property
    def level(self) -> int:
        return LEVEL_OF_KIND.get(self.kind, 3)

    @property
    def key(self) -> str:
        """Identity of the unit: its code and the first day it existed."""
        return f"{self.code}@{self.valid_from.isoformat() if self.valid_from else 'origin'}"

    @property
    def parent_code(self) -> str | None:
        """The parent of its latest span."""
        return self.parents[-1].parent_code if self.parents else None

    def valid_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day <= self.valid_to)

    def overlaps(self, first: dt.date, last: dt.date) -> bool:
        """True when it existed on some day of [first, last]."""
        return (self.valid_from is None or self.valid_from <= last) and (
            self.valid_to is None or first <= self.valid_to
        )

    def parent_on(self, day: dt.date) -> str | None:
        for span in self.parents:
            if span.covers(day):
                return span.parent_code
        return None

    def describe_validity(self) -> str:
        return f"{self.valid_from or '…'} to {self.valid_to or '…'}"


def _contiguous(before: dt.date | None, after: dt.date | None) -> bool:
    return before is not None and after is not None and before + ONE_DAY == after


def build_units(rows: Iterable[UnitRow], successions: Iterable[Succession] = ()) -> list[Unit]:
    """Units from rows: a code's consecutive rows with the same name and kind are one unit
    (its parent may change between them), unless a succession link starts on the later row."""
    starts = {(s.new_code, s.effective) for s in successions} | {(s.old_code, s.effective) for s in successions}
    by_code: dict[str, list[UnitRow]] = {}
    for row in rows:
        by_code.setdefault(row.code, []).append(row)
    units: list[Unit] = []
    for code, code_rows in sorted(by_code.items()):
        code_rows.sort(key=lambda r: r.valid_from or dt.date.min)
        current: Unit | None = None
        for row in code_rows:
            span = ParentSpan(row.parent_code, row.valid_from, row.valid_to)
            if current and current.valid_to and row.valid_from and row.valid_from <= current.valid_to:
                raise UnitDataError(f"unit {code}: rows overlap ({current.describe_validity()} and {row.valid_from})")
            continues = (
                current is not None
                and (current.name, current.full_name, current.kind) == (row.name, row.full_name, row.kind)
                and _contiguous(current.valid_to, row.valid_from)
                and (code, row.valid_from) not in starts
            )
            if current is not None and continues:
                current = replace(current, valid_to=row.valid_to, parents=(*current.parents, span))
                continue
            if current is not None:
                units.append(current)
            current = Unit(code, row.name, row.full_name, row.kind, row.valid_from, row.valid_to, (span,))
        if current is not None:
            units.append(current)
    return units


@dataclass(slots=True)
class UnitRegistry:
    """Every unit, by code and date; the succession between them. Immutable once built."""

    units: tuple[Unit, ...]
    successions: tuple[Succession, ...] = ()
    version: str = field(default="")
    population_dates: tuple[dt.date, ...] = ()  # the dates population figures describe
    _versions: dict[str, tuple[Unit, ...]] = field(default_factory=dict, repr=False)
    _children: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _memo: dict[str, object] = field(default_factory=dict, repr=False)  # derived indexes (see memo)

    def __post_init__(self) -> None:
        by_code: dict[str, list[Unit]] = {}
        for unit in self.units:
            by_code.setdefault(unit.code, []).append(unit)
        self._versions = {c: tuple(sorted(v, key=lambda u: u.valid_from or dt.date.min)) for c, v in by_code.items()}
        children: dict[str, set[str]] = {}
        for unit in self.units:
            for span in unit.parents:
                if span.parent_code:
                    children.setdefault(span.parent_code, set()).add(unit.code)
        self._children = children
        if not self.version:
            digest = hashlib.blake2b(digest_size=8)
            for unit in sorted(self.units, key=lambda u: u.key):
                digest.update(repr(unit).encode())
            for link in self.successions:
                digest.update(repr(link).encode())
            self.version = digest.hexdigest()

    # -- building ------------------------------------------------------------------------
    @classmethod
    def from_units(cls, units: Iterable[Unit], successions: Iterable[Succession] = ()) -> "UnitRegistry":
        return cls(tuple(units), tuple(successions))

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[UnitRow],
        successions: Iterable[Succession] = (),
        populations: Iterable[PopulationFigure] = (),
    ) -> "UnitRegistry":
        """Build and validate; UnitDataError when the data contradict themselves."""
        links = tuple(successions)
        units = build_units(rows, links)
        registry = cls(tuple(units), links).with_population(populations)
        problems = registry.problems()
        if problems:
            raise UnitDataError(
                "; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
            )
        return registry

    def with_population(self, figures: Iterable[PopulationFigure]) -> "UnitRegistry":
        """The registry with each figure attached to the unit its code denoted on its date."""
        found: dict[str, PopulationFigure] = {}
        figures = list(figures)
        for figure in figures:
            unit = self.get(figure.code, figure.as_of)
            if unit is None:
                raise UnitDataError(f"population of {figure.code}: no such unit on {figure.as_of}")
            if unit.key not in found or found[unit.key].as_of < figure.as_of:
                found[unit.key] = figure
        units = [
            replace(u, population=found[u.key].population, area_km2=found[u.key].area_km2) if u.key in found else u
            for u in self.units
        ]
        dates = tuple(sorted({f.as_of for f in figures} | set(self.population_dates)))
        return UnitRegistry(tuple(units), self.successions, population_dates=dates)

    def problems(self) -> list[str]:
        """What contradicts itself: parents that do not exist when named, succession links to
        or from units that do not exist around their date."""
        out = []
        for unit in self.units:
            for span in unit.parents:
                if span.parent_code is None:
                    continue
                parents = self.versions(span.parent_code)
                for day in (span.valid_from, span.valid_to):
                    if day is not None and self.get(span.parent_code, day) is None:
                        out.append(f"unit {unit.code}: parent {span.parent_code} does not exist on {day}")
                if span.valid_to is None and (not parents or parents[-1].valid_to is not None):
                    out.append(f"unit {unit.code}: parent {span.parent_code} does not exist to this day")
                if span.valid_from is None and (not parents or parents[0].valid_from is not None):
                    out.append(f"unit {unit.code}: parent {span.parent_code} does not exist from the start")
        for link in self.successions:
            if self.get(link.old_code, link.effective - ONE_DAY) is None:
                out.append(f"succession {link.old_code}→{link.new_code}: {link.old_code} not valid on the eve")
            if self.get(link.new_code, link.effective) is None:
                out.append(f"succession {link.old_code}→{link.new_code}: {link.new_code} not valid on {link.effective}")
        return out

    def memo(self, name: str, build: Callable[[], T]) -> T:
        """A value derived from the registry, computed once (the registry never changes)."""
        if name not in self._memo:
            self._memo[name] = build()
        return self._memo[name]  # type: ignore[return-value]

    # -- lookups -------------------------------------------------------------------------
    def __contains__(self, code: object) -> bool:
        return code in self._versions

    def __len__(self) -> int:
        return len(self.units)

    def codes(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, code: str) -> tuple[Unit, ...]:
        return self._versions.get(code, ())

    def get(self, code: str, day: dt.date | None = None) -> Unit | None:
        """The unit ``code`` denoted on ``day``; without a day, its latest unit."""
        versions = self._versions.get(code)
        if not versions:
            return None
        if day is None:
            return versions[-1]
        return next((u for u in versions if u.valid_on(day)), None)

    def by_key(self, key: str) -> Unit | None:
        code = key.partition("@")[0]
        return next((u for u in self.versions(code) if u.key == key), None)

    def check(self, code: str, moment: dt.datetime) -> tuple[str, str] | None:
        """(error code, reason) when ``code`` cannot carry an event at ``moment``."""
        versions = self._versions.get(code)
        if not versions:
            return "unknown_unit", f"unknown administrative unit {code!r}"
        day = local_date(moment)
        if any(u.valid_on(day) for u in versions):
            return None
        spans = ", ".join(f"{u.name} {u.describe_validity()}" for u in versions)
        return "unit_not_valid", f"unit {code!r} did not exist on {day} (valid: {spans})"

    def lineage(self, code: str, day: dt.date | None = None) -> tuple[str, ...]:
        """The unit and its ancestors on ``day``, nearest first (``('14755', '380', '38')``);
        without a day, along the latest parents."""
        out: list[str] = []
        current: str | None = code
        while current is not None and current not in out:
            unit = self.get(current, day)
            if unit is None:
                break
            out.append(current)
            current = unit.parent_on(day) if day is not None else unit.parent_code
        return tuple(out)

    def children(self, code: str, day: dt.date) -> list[str]:
        """Codes whose parent on ``day`` is ``code``."""
        out = []
        for child in self._children.get(code, ()):
            unit = self.get(child, day)
            if unit is not None and unit.parent_on(day) == code:
                out.append(child)
        return sorted(out)

    def descendants(self, code: str, day: dt.date | None = None) -> list[str]:
        """Every code below ``code`` on ``day`` (or ever, without a day), not itself."""
        out: set[str] = set()
        stack = [code]
        while stack:
            current = stack.pop()
            below = self.children(current, day) if day is not None else sorted(self._children.get(current, ()))
            for child in below:
                if child not in out and child != code:
                    out.add(child)
                    stack.append(child)
        return sorted(out)

    def covers(self, ancestor: str, code: str, day: dt.date | None = None) -> bool:
        """True when ``code`` is ``ancestor`` or lies below it (on ``day``, or ever)."""
        if day is not None:
            return ancestor in self.lineage(code, day)
        return code == ancestor or code in self.descendants(ancestor)

    def at_level(self, level: int, day: dt.date | None = None, within: str | None = None) -> list[Unit]:
        """Units of one level (1 province, 2 district, 3 commune) valid on ``day`` (every
        version without a day), optionally below ``within`` on that day."""
        scope = None if within is None else {within, *self.descendants(within, day)}
        units = (u for u in self.units if u.level == level and (day is None or u.valid_on(day)))
        return sorted((u for u in units if scope is None or u.code in scope), key=lambda u: (u.code, u.key))

    def memberships(self, unit: Unit, first: dt.date, last: dt.date) -> list[tuple[str, dt.date, dt.date]]:
        """(code, from, to) of ``unit`` and of every unit below it, over the days of [first,
        last] each spent inside it: whose events (dossiers) count for ``unit`` then."""
        start = max(first, unit.valid_from or first)
        end = min(last, unit.valid_to or last)
        if start > end:
            return []
        out = [(unit.code, start, end)]
        for child_code in self._children.get(unit.code, ()):
            for child in self.versions(child_code):
                for span in child.parents:
                    if span.parent_code != unit.code:
                        continue
                    a = max(start, span.valid_from or start, child.valid_from or start)
                    b = min(end, span.valid_to or end, child.valid_to or end)
                    if a <= b:
                        out += self.memberships(replace(child, valid_from=a, valid_to=b), a, b)
        return out

    def population(self, unit: Unit, day: dt.date) -> int | None:
        """Residents of ``unit`` (indicative): its own figure, else the sum of the units under
        it on the date of the latest figures by ``day`` (the 2019 census counted the province's
        27 districts, the 2025 figures its 166 communes) when every one of them has one."""
        if unit.population is not None:
            return unit.population
        if not self.population_dates:
            return None
        vintage = max((d for d in self.population_dates if d <= day), default=self.population_dates[0])
        if not unit.valid_on(vintage):
            return None
        children = [self.get(code, vintage) for code in self.children(unit.code, vintage)]
        figures = [self.population(c, vintage) for c in children if c is not None]
        if not figures or any(f is None for f in figures):
            return None
        return sum(f for f in figures if f is not None)

    # -- succession ------------------------------------------------------------------------
    def predecessors(self, unit: Unit) -> list[tuple[Unit, Succession]]:
        """The units that went (wholly or partly) into ``unit`` when it began."""
        if unit.valid_from is None:
            return []
        return self._links("predecessors").get(unit.key, [])

    def successors(self, unit: Unit) -> list[tuple[Unit, Succession]]:
        """The units ``unit`` went into (wholly or partly) when it ended."""
        if unit.valid_to is None:
            return []
        return self._links("successors").get(unit.key, [])

    def _links(self, direction: str) -> dict[str, list[tuple[Unit, Succession]]]:
        """Succession links by the key of the new unit ("predecessors") or of the old one."""

        def build() -> dict[str, list[tuple[Unit, Succession]]]:
            out: dict[str, list[tuple[Unit, Succession]]] = {}
            for link in self.successions:
                old, new = self.get(link.old_code, link.effective - ONE_DAY), self.get(link.new_code, link.effective)
                if old is None or new is None:
                    continue
                if direction == "predecessors" and new.valid_from == link.effective:
                    out.setdefault(new.key, []).append((old, link))
                elif direction == "successors" and old.valid_to == link.effective - ONE_DAY:
                    out.setdefault(old.key, []).append((new, link))
            return out

        return self.memo(f"links:{direction}", build)

    def weight(self, link: Succession) -> float:
        """The share of the old unit's counts a link carries: its own weight, else full 1 and
        a split old unit shared equally among the units it went into."""
        if link.weight is not None:
            return link.weight
        if link.share == "full":
            return 1.0
        parts = self.memo("split_parts", self._split_parts)
        return 1.0 / parts[(link.old_code, link.effective)]

    def _split_parts(self) -> dict[tuple[str, dt.date], int]:
        """How many units each old unit went into, per reform date."""
        counts: dict[tuple[str, dt.date], int] = {}
        for link in self.successions:
            counts[(link.old_code, link.effective)] = counts.get((link.old_code, link.effective), 0) + 1
        return counts

    def reform_dates(self) -> list[dt.date]:
        return sorted({s.effective for s in self.successions})

    def all_units(self) -> Iterator[Unit]:
        return iter(self.units)


# -- files ------------------------------------------------------------------------------------


def _date(value: str | None) -> dt.date | None:
    value = (value or "").strip()
    return dt.date.fromisoformat(value) if value else None


def read_unit_rows(path: Path) -> list[UnitRow]:
    """Rows of a unit CSV (``code,name,full_name,kind,parent_code,valid_from,valid_to``)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            UnitRow(
                code=row["code"].strip(),
                name=row["name"].strip(),
                full_name=row["full_name"].strip(),
                kind=row["kind"].strip(),
                parent_code=row["parent_code"].strip() or None,
                valid_from=_date(row.get("valid_from")),
                valid_to=_date(row.get("valid_to")),
            )
            for row in csv.DictReader(handle)
        ]


def read_successions(path: Path) -> list[Succession]:
    """Links of a succession CSV (``old_code,new_code,share,effective[,weight]``)."""
    with path.open(encoding="utf-8", newline="") as handle:
        out = []
        for row in csv.DictReader(handle):
            share: Share
            if row["share"].strip() == "full":
                share = "full"
            elif row["share"].strip() == "partial":
                share = "partial"
            else:
                raise UnitDataError(f"succession {row['old_code']}→{row['new_code']}: share {row['share']!r}")
            effective = _date(row["effective"])
            if effective is None:
                raise UnitDataError(f"succession {row['old_code']}→{row['new_code']}: no effective date")
            weight = (row.get("weight") or "").strip()
            out.append(
                Succession(
                    row["old_code"].strip(),
                    row["new_code"].strip(),
                    share,
                    effective,
                    float(weight) if weight else None,
                )
            )
        return out


def read_population(path: Path, as_of: dt.date) -> list[PopulationFigure]:
    """Figures of a population CSV (``code,population[,area_km2…]``), as of a date."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            PopulationFigure(
                row["code"].strip(),
                as_of,
                int(row["population"]),
                float(row["area_km2"]) if (row.get("area_km2") or "").strip() else None,
            )
            for row in csv.DictReader(handle)
        ]


def file_kind(path: Path) -> Literal["units", "succession", "population"]:
    """Which kind of reference file this is, from its header."""
    with path.open(encoding="utf-8", newline="") as handle:
        header = set(next(csv.reader(handle), []))
    if {"code", "name", "kind", "parent_code"} <= header:
        return "units"
    if {"old_code", "new_code", "share"} <= header:
        return "succession"
    if {"code", "population"} <= header:
        return "population"
    raise UnitDataError(f"{path.name}: not a unit, succession or population file (columns {sorted(header)})")


def population_date(path: Path) -> dt.date:
    """The date a population file describes: the year in its name, on 1 July (the 2025 file
    describes the communes from 2025-07-01; the 2019 census the districts of that year)."""
    digits = [part for part in path.stem.replace("-", "_").split("_") if part.isdigit() and len(part) == 4]
    if not digits:
        raise UnitDataError(f"{path.name}: name the year of a population file (…_2025.csv)")
    return dt.date(int(digits[-1]), 7, 1)
