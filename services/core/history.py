"""History across reorganisations: what a unit's values over a period are made of.

A unit's values come from the counters of its own code while it existed (*observed*).
Before it existed - or before territory was merged into it - they can be *restated* from
the units it was made of (``history="restated"``, the default of the API):

- a unit that began on a reform date (today's communes) is restated from its predecessors
  (``UnitRegistry.predecessors``): a predecessor that came in whole adds all its counts
  (*exact*); one that was split (``partial``) adds its share - its link's ``weight``, or an
  equal share among the units it went into - and makes the point *approximate*;
- a unit that absorbed a whole unit (Đông Sơn's communes moved to Thanh Hóa city on
  2025-01-01 and the district ended) is restated with the absorbed unit's counts before the
  absorption (*exact*).

Restatement is recursive (a predecessor is itself restated), pure arithmetic over additive
counters, and never silent: every piece carries its basis, and a point, a row or a card
says the worst basis of the pieces it sums. Pure: no I/O.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from services.core.calendar import VN
from services.core.units import ONE_DAY, Unit, UnitRegistry

Basis = Literal["observed", "restated_exact", "restated_approximate", "none"]
History = Literal["restated", "observed"]
_RANK: dict[str, int] = {"none": 0, "observed": 1, "restated_exact": 2, "restated_approximate": 3}


def worst(bases: Iterable[Basis]) -> Basis:
    """The basis of a sum of pieces: the least exact one ("none" when there is no piece)."""
    found: Basis = "none"
    for basis in bases:
        if _RANK[basis] > _RANK[found]:
            found = basis
    return found


def day_start(day: dt.date) -> dt.datetime:
    """Local midnight starting ``day``."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=VN)


@dataclass(frozen=True, slots=True)
class Piece:
    """Counters of ``code`` over [start, end), times ``weight``, with the basis they give."""

    code: str
    start: dt.datetime
    end: dt.datetime
    weight: float
    basis: Basis

    def overlaps(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.start < end and start < self.end


def absorptions(registry: UnitRegistry, unit: Unit) -> list[tuple[Unit, dt.date]]:
    """Whole units merged into ``unit`` while it existed, and the day each joined: a unit
    that ended on the eve of that day while every unit under it moved under ``unit``."""
    return registry.memo("absorptions", lambda: _absorptions(registry)).get(unit.key, [])


def _absorptions(registry: UnitRegistry) -> dict[str, list[tuple[Unit, dt.date]]]:
    out: dict[str, list[tuple[Unit, dt.date]]] = {}
    for candidate in registry.all_units():
        end = candidate.valid_to
        if end is None or registry.successors(candidate):
            continue  # still valid, or a reform with explicit succession
        below = registry.children(candidate.code, end)
        moved = [registry.get(code, end + ONE_DAY) for code in below]
        parents = {m.parent_on(end + ONE_DAY) if m is not None else None for m in moved}
        if not below or len(parents) != 1 or None in parents:
            continue
        (parent_code,) = parents
        assert parent_code is not None
        receiver = registry.get(parent_code, end + ONE_DAY)
        if receiver is not None and receiver.valid_on(end):  # an existing unit took it in whole
            out.setdefault(receiver.key, []).append((candidate, end + ONE_DAY))
    return out


def _restated(basis: Basis, exact_link: bool) -> Basis:
    if basis == "restated_approximate" or not exact_link:
        return "restated_approximate"
    return "restated_exact"


def compose(
    registry: UnitRegistry, unit: Unit, start: dt.datetime, end: dt.datetime, history: History = "restated"
) -> list[Piece]:
    """The pieces that make ``unit``'s values over [start, end) (local, aware).

    Its own code while it existed; with ``history="restated"``, also what it was made of
    before: predecessors (weighted) before it began, absorbed units before they joined.
    """
    pieces: list[Piece] = []
    own_start = max(start, day_start(unit.valid_from)) if unit.valid_from else start
    own_end = min(end, day_start(unit.valid_to + ONE_DAY)) if unit.valid_to else end
    if own_start < own_end:
        pieces.append(Piece(unit.code, own_start, own_end, 1.0, "observed"))
    if history != "restated":
        return pieces
    if unit.valid_from is not None and start < day_start(unit.valid_from):
        before = min(end, day_start(unit.valid_from))
        for old, link in registry.predecessors(unit):
            weight = registry.weight(link)
            for p in compose(registry, old, start, before, history):
                pieces.append(
                    Piece(p.code, p.start, p.end, p.weight * weight, _restated(p.basis, link.share == "full"))
                )
    for absorbed, joined in absorptions(registry, unit):
        if start < day_start(joined):
            for p in compose(registry, absorbed, start, min(end, day_start(joined)), history):
                pieces.append(Piece(p.code, p.start, p.end, p.weight, _restated(p.basis, True)))
    return pieces


def unit_on(
    registry: UnitRegistry, code: str, start: dt.datetime, end: dt.datetime, as_of: dt.date | None
) -> Unit | None:
    """Which unit a code names in a question about [start, end): the one valid on ``as_of``
    if given; else the latest one that existed during the period; else (the code did not
    exist then) its unit nearest the period."""
    if as_of is not None:
        return registry.get(code, as_of)
    versions = registry.versions(code)
    if not versions:
        return None
    first, last = start.astimezone(VN).date(), (end - dt.timedelta(microseconds=1)).astimezone(VN).date()
    during = [u for u in versions if u.overlaps(first, last)]
    if during:
        return during[-1]
    before = [u for u in versions if u.valid_to is not None and u.valid_to < first]
    return before[-1] if before else versions[0]


def as_of_day(end: dt.datetime) -> dt.date:
    """The default "as of" day of a period: its last day."""
    return (end - dt.timedelta(microseconds=1)).astimezone(VN).date()


# -- former districts: continuity with the view before the district level ended ---------------


def former_eve(registry: UnitRegistry, level: int = 2) -> dt.date | None:
    """The last day units of ``level`` existed, if the level has ended (2025-06-30 for
    Thanh Hóa's districts); None while it still exists."""
    units = [u for u in registry.all_units() if u.level == level]
    if not units or any(u.valid_to is None for u in units):
        return None
    return max(u.valid_to for u in units if u.valid_to is not None)


def former_units(registry: UnitRegistry, level: int = 2) -> list[Unit]:
    """The units of an ended level as they were on its last day (Thanh Hóa's 26 districts of
    2025-06-30)."""
    eve = former_eve(registry, level)
    return [] if eve is None else registry.at_level(level, eve)


def main_former(registry: UnitRegistry, unit: Unit, level: int = 2) -> Unit | None:
    """The unit of an ended level that most of ``unit`` was formed from: the one whose units
    carry the largest share of its predecessors (ties: the lowest code)."""
    return registry.memo(f"main_former_{level}", lambda: _main_formers(registry, level)).get(unit.key)


def _main_formers(registry: UnitRegistry, level: int) -> dict[str, Unit]:
    out: dict[str, Unit] = {}
    for unit in registry.all_units():
        shares: dict[str, float] = defaultdict(float)
        for old, link in registry.predecessors(unit):
            eve = link.effective - ONE_DAY
            ancestors = [registry.get(code, eve) for code in registry.lineage(old.code, eve)]
            at_level = next((a for a in ancestors if a is not None and a.level == level), None)
            if at_level is not None:
                shares[at_level.key] += registry.weight(link)
        if shares:
            best = max(sorted(shares), key=lambda k: shares[k])
            found = registry.by_key(best)
            if found is not None:
                out[unit.key] = found
    return out


def formed_from(registry: UnitRegistry, former: Unit, level: int = 2) -> list[Unit]:
    """The units formed mostly from ``former`` (today's communes of a former district)."""

    def build() -> dict[str, list[Unit]]:
        out: dict[str, list[Unit]] = {}
        for unit in registry.all_units():
            if (main := main_former(registry, unit, level)) is not None:
                out.setdefault(main.key, []).append(unit)
        return out

    return registry.memo(f"formed_from_{level}", build).get(former.key, [])


def exactly_formed(registry: UnitRegistry, former: Unit, level: int = 2) -> bool:
    """True when the units formed mostly from ``former`` cover its territory exactly: every
    one of its units went wholly into them, and they came from nothing else."""
    return registry.memo(f"exactly_formed_{level}:{former.key}", lambda: _exactly_formed(registry, former, level))


def _exactly_formed(registry: UnitRegistry, former: Unit, level: int) -> bool:
    if former.valid_to is None:
        return False
    eve = former.valid_to
    inside = {registry.get(c, eve) for c in registry.descendants(former.code, eve)}
    inside_keys = {u.key for u in inside if u is not None}
    for unit in formed_from(registry, former, level):
        for old, link in registry.predecessors(unit):
            if link.share != "full" or old.key not in inside_keys:
                return False
    taken = {old.key for u in formed_from(registry, former, level) for old, _link in registry.predecessors(u)}
    leaves = {k for k in inside_keys if not registry.children(k.split("@")[0], eve)}
    return bool(taken) and leaves <= taken


def compose_former(registry: UnitRegistry, former: Unit, start: dt.datetime, end: dt.datetime) -> list[Piece]:
    """A former district over [start, end): its own counters while it existed (with what it
    absorbed), then those of the units formed mostly from it - restated exactly only when
    they cover its territory exactly."""
    pieces = compose(registry, former, start, end, "restated")
    if former.valid_to is None or end <= day_start(former.valid_to + ONE_DAY):
        return pieces
    after = max(start, day_start(former.valid_to + ONE_DAY))
    basis: Basis = "restated_exact" if exactly_formed(registry, former) else "restated_approximate"
    for unit in formed_from(registry, former):
        for p in compose(registry, unit, after, end, "observed"):
            pieces.append(Piece(p.code, p.start, p.end, p.weight, basis))
    return pieces


# -- open work: which unit today carries the open dossiers of a unit that ended ---------------


def heir(registry: UnitRegistry, unit: Unit) -> Unit | None:
    """The unit that took over an ended unit's open work: the successor it went into most
    (its link's weight); on a tie the one that kept its code, else the lowest code."""
    candidates = registry.successors(unit)
    if not candidates:
        return None
    best = max(candidates, key=lambda c: (registry.weight(c[1]), c[0].code == unit.code, -int(c[0].code)))
    return best[0]


def carried(registry: UnitRegistry, unit: Unit) -> list[Unit]:
    """``unit`` and every ended unit whose open work it carries (recursively): where to
    look for its open and overdue dossiers."""
    out = [unit]
    for old, _link in registry.predecessors(unit):
        if (h := heir(registry, old)) is not None and h.key == unit.key:
            out += carried(registry, old)
    for absorbed, _day in absorptions(registry, unit):
        out += carried(registry, absorbed)
    return out
