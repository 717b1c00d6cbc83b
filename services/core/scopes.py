"""What an operator scoped to a unit may read, across reorganisations. Pure.

A key is scoped to a unit: the one its code denoted on the day the key was issued (a key
issued today for ``14758`` is scoped to Phường Hàm Rồng; one issued in 2024 for ``395`` to the
district of Thọ Xuân). It may read:

1. that unit, and every unit that lay below it while it existed;
2. the units it was made of - its predecessors, recursively, and what they absorbed: a
   commune's leaders read the history of the communes that became theirs (restated history
   is computed from them);
3. when its unit has ended, the units formed from it: an ended commune's successors; an
   ended district's communes formed mostly from it (``history.formed_from``) - the former
   district's leaders keep reading their territory, now as communes.

Why (3) and not "nothing new": the KPIs are aggregates without personal data, the steering
committee follows former districts through the transition, and an ended unit's key would
otherwise see nothing current at all. A key scoped to an ended unit should still be replaced
by keys for today's units (``smartcity keys create --kind operator --scope <commune>``); the
audit log shows who read what.
"""

import datetime as dt

from services.core.history import absorptions, formed_from
from services.core.units import Unit, UnitRegistry


def scope_unit(registry: UnitRegistry, code: str, issued_on: dt.date | None) -> Unit | None:
    """The unit a key's scope denotes: the code's unit on the day of issue (or its latest)."""
    if issued_on is not None:
        found = registry.get(code, issued_on)
        if found is not None:
            return found
    return registry.get(code)


def _below(registry: UnitRegistry, unit: Unit) -> set[str]:
    """Keys of the units that lay below ``unit`` at any time while it existed."""
    out: set[str] = set()
    for code in registry.descendants(unit.code):
        for version in registry.versions(code):
            if any(registry.covers(unit.code, code, day) for day in _probe_days(version, unit)):
                out.add(version.key)
    return out


def _probe_days(version: Unit, within: Unit) -> list[dt.date]:
    """Days to test whether ``version`` lay below ``within``: the start and end of each of
    its parent spans, clipped to both units' lives."""
    days = []
    for span in version.parents:
        for day in (span.valid_from, span.valid_to):
            candidate = day or version.valid_from or version.valid_to or within.valid_from or within.valid_to
            if candidate is None:
                candidate = dt.date(2000, 1, 1)
            if version.valid_on(candidate) and within.valid_on(candidate):
                days.append(candidate)
    return days


def visible(registry: UnitRegistry, scope: Unit) -> frozenset[str]:
    """Keys of every unit a key scoped to ``scope`` may read (see the module's rules)."""
    return registry.memo(f"visible:{scope.key}", lambda: _visible(registry, scope))


def _visible(registry: UnitRegistry, scope: Unit) -> frozenset[str]:
    keys = {scope.key} | _below(registry, scope)
    pending = [scope]
    while pending:  # (2) what it was made of
        unit = pending.pop()
        made_of = [old for old, _link in registry.predecessors(unit)] + [u for u, _day in absorptions(registry, unit)]
        for old in made_of:
            if old.key not in keys:
                keys |= {old.key} | _below(registry, old)
                pending.append(old)
    if scope.valid_to is not None:  # (3) what it became
        heirs = [new for new, _link in registry.successors(scope)] + formed_from(registry, scope, scope.level)
        for new in heirs:
            keys |= {new.key} | _below(registry, new)
    return frozenset(keys)
