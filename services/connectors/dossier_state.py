"""A dossier as the connector knows it, merged from every snapshot and progress step, and
the CloudEvents it implies.

A DVCQG payload is a *state*, sent again on every update, possibly out of order. The
connector keeps what it learnt per dossier (``connector_dossiers``, no personal data) and
merges each new payload into it with monotone rules, so an older snapshot arriving late
never undoes a newer one:

- flags (fee, digitised, reused, paid online, electronic result) are OR-ed;
- the due time is the earliest one seen, including ``NgayHenTraTruoc`` of supplement
  requests: the Decision 766 rule extends the *original* due time by the time spent waiting
  for supplements (the aggregator adds the pauses), so a due date already moved by a
  supplement or an extension must not be used;
- statuses are a set: received once any status beyond 1/3 was seen, resolved once 9/10,
  withdrawn (7) or stopped (8) once seen and never resolved;
- supplement requests are numbered in order of request time; progress steps give times
  a snapshot lacks (a status-5 step starts a pause, the next other step ends it).

:func:`derive` returns every event the merged facts imply, with deterministic ids - one id
per lifecycle step (``<dossier>:supplement:2``), or per content for the steps whose data may
still grow (``<dossier>:received:<digest>``) - so a resent payload derives the same ids and
the aggregator, which deduplicates on (source, id), counts it once. Pure: no I/O.
"""

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.connectors import dvcqg
from services.connectors.common import Event, RecordError, digest
from services.connectors.mappings import Mappings

MAX_STEPS = 200


@dataclass(slots=True)
class DossierFacts:
    """What is known about one dossier (JSON-serialisable via :meth:`to_json`)."""

    dossier_id: str
    unit: str | None = None
    sector: str | None = None
    procedure_code: str | None = None
    channel: str | None = None
    channel_defaulted: bool = False
    received_at: str | None = None
    due_at: str | None = None
    finished_at: str | None = None
    returned_at: str | None = None
    fee_required: bool = False
    paid_online: bool = False
    digitised: bool = False
    reused_data: bool = False
    e_result: bool = False
    statuses: list[int] = field(default_factory=list)
    # [requested_at, resumed_at | None, provisional]
    supplements: list[list[Any]] = field(default_factory=list)
    steps: list[list[Any]] = field(default_factory=list)  # [at, status]
    has_snapshot: bool = False
    published: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DossierFacts":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _at(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _earliest(*values: str | None) -> str | None:
    present = [v for v in values if v]
    return min(present, key=lambda v: dt.datetime.fromisoformat(v)) if present else None


def home(snapshot: dvcqg.Snapshot, mappings: Mappings, madonvi: str) -> tuple[str, str]:
    """(unit, sector) of a dossier: the unit of its handling agency (``DonViXuLy``), else of
    the organ its number starts with, else of the sending organ (``madonvi``); the sector of
    its procedure field, ``general`` when the field belongs to none of the four sectors."""
    target = mappings.agency(snapshot.agency) or mappings.organ(snapshot.organ_prefix) or mappings.organ(madonvi)
    if target is None or target.unit_code is None:
        raise RecordError(
            "DonViXuLy",
            "no unit is mapped for the handling agency (DonViXuLy), the organ prefix of MaHoSo "
            "or madonvi; load the agency or organ mapping",
            "unmapped_unit",
        )
    return target.unit_code, mappings.sector_of_field(snapshot.field_code).value


def merge_snapshot(facts: DossierFacts, snap: dvcqg.Snapshot, unit: str, sector: str, default_channel: str) -> None:
    """Fold one snapshot into the facts (in place)."""
    if facts.unit is None:  # the first home stays: a reloaded mapping must not split a dossier
        facts.unit, facts.sector = unit, sector
    facts.has_snapshot = True
    facts.procedure_code = facts.procedure_code or snap.procedure_code
    if snap.channel is not None and (facts.channel is None or facts.channel_defaulted):
        facts.channel, facts.channel_defaulted = snap.channel, False
    elif facts.channel is None:
        facts.channel, facts.channel_defaulted = default_channel, True
    facts.received_at = facts.received_at or _iso(snap.received_at)
    befores = [_iso(s.due_before) for s in snap.supplements]
    facts.due_at = _earliest(facts.due_at, _iso(snap.due_at), *befores)
    facts.finished_at = facts.finished_at or _iso(snap.finished_at)
    facts.returned_at = facts.returned_at or _iso(snap.returned_at)
    for name in ("fee_required", "paid_online", "digitised", "reused_data", "e_result"):
        setattr(facts, name, getattr(facts, name) or getattr(snap, name))
    if snap.status not in facts.statuses:
        facts.statuses = sorted({*facts.statuses, snap.status})
    _merge_supplements(facts, snap.supplements)


def _merge_supplements(facts: DossierFacts, listed: tuple[dvcqg.Supplement, ...]) -> None:
    if not listed:
        return
    real = {entry[0]: entry for entry in facts.supplements if not entry[2]}
    for item in listed:
        key = _iso(item.requested_at)
        entry = real.setdefault(key, [key, None, False])
        entry[1] = entry[1] or _iso(item.resumed_at)
    # listed requests replace provisional ones: both are numbered by order, so request n keeps its id
    facts.supplements = sorted(real.values(), key=lambda e: dt.datetime.fromisoformat(e[0]))


def merge_step(facts: DossierFacts, step: dvcqg.Step) -> None:
    """Fold one progress step into the facts (in place)."""
    entry = [step.at.isoformat(), step.status]
    if entry not in facts.steps:
        facts.steps.append(entry)
        facts.steps.sort(key=lambda e: (dt.datetime.fromisoformat(e[0]), e[1]))
        del facts.steps[:-MAX_STEPS]
    if step.status not in facts.statuses:
        facts.statuses = sorted({*facts.statuses, step.status})


def _step_time(facts: DossierFacts, statuses: frozenset[int], after: dt.datetime | None = None) -> dt.datetime | None:
    for at, status in facts.steps:
        moment = dt.datetime.fromisoformat(at)
        if status in statuses and (after is None or moment > after):
            return moment
    return None


def _latest_known(facts: DossierFacts) -> dt.datetime:
    """The latest time the facts hold: a step without a time of its own happened no earlier."""
    times = [facts.received_at, facts.finished_at, facts.returned_at, *(at for at, _ in facts.steps)]
    times += [t for entry in facts.supplements for t in entry[:2]]
    return max(dt.datetime.fromisoformat(t) for t in times if t)


def _provisional_supplement(facts: DossierFacts) -> None:
    """Status 5 seen but no request listed: one request, timed by its progress step when
    known, else by the latest time known of the dossier (the pause started no earlier)."""
    if dvcqg.SUPPLEMENT not in facts.statuses or facts.supplements:
        return
    steps = [dt.datetime.fromisoformat(at) for at, status in facts.steps if status == dvcqg.SUPPLEMENT]
    start = steps[0] if steps else _latest_known(facts)
    facts.supplements = [[start.isoformat(), None, True]]


def _close_provisional(facts: DossierFacts) -> None:
    for entry in facts.supplements:
        if entry[2] and entry[1] is None:
            after = _step_time(facts, frozenset(range(1, 11)) - {dvcqg.SUPPLEMENT}, dt.datetime.fromisoformat(entry[0]))
            entry[1] = _iso(after)


def _versioned(base: str, moment: dt.datetime, data: dict[str, Any]) -> str:
    return f"{base}:{digest(moment.isoformat(), orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode(), size=6)}"


def derive(facts: DossierFacts, source: str) -> list[Event]:
    """Every event the facts imply, in time order (mutates provisional supplement entries).
    Deterministic: a step whose time no payload gives gets the latest time known of the
    dossier, never the wall clock."""
    received_at = _at(facts.received_at)
    received = bool(set(facts.statuses) - dvcqg.NOT_RECEIVED) and received_at is not None
    if not facts.has_snapshot or facts.unit is None or facts.sector is None or not received or received_at is None:
        return []
    _provisional_supplement(facts)
    _close_provisional(facts)
    d = facts.dossier_id

    def event(id_: str, verb: str, at: dt.datetime, **data: Any) -> Event:
        assert facts.unit is not None and facts.sector is not None
        return Event(id_, source, facts.sector, "dossier", verb, at, facts.unit, {"dossier_id": d, **data})

    data = {
        "procedure_code": facts.procedure_code,
        "channel": facts.channel,
        "due_at": facts.due_at,
        "fee_required": facts.fee_required,
        "digitised": facts.digitised,
        "reused_data": facts.reused_data,
    }
    out = [event(_versioned(f"{d}:received", received_at, data), "received", received_at, **data)]
    for n, (requested, resumed, _) in enumerate(facts.supplements, start=1):
        out.append(event(f"{d}:supplement:{n}", "supplement_requested", dt.datetime.fromisoformat(requested)))
        if resumed:
            out.append(event(f"{d}:resumed:{n}", "supplement_resumed", dt.datetime.fromisoformat(resumed)))
    resolved = bool(set(facts.statuses) & dvcqg.RESOLVED)
    if resolved:
        at = _at(facts.finished_at) or _step_time(facts, dvcqg.RESOLVED) or _at(facts.returned_at)
        if at is not None:
            out.append(
                event(_versioned(f"{d}:resolved", at, {"e": facts.e_result}), "resolved", at, e_result=facts.e_result)
            )
    elif set(facts.statuses) & {dvcqg.WITHDRAWN, dvcqg.STOPPED}:
        reason = "withdrawn" if dvcqg.WITHDRAWN in facts.statuses else "stopped"
        at = _step_time(facts, frozenset({dvcqg.WITHDRAWN, dvcqg.STOPPED})) or _at(facts.returned_at)
        at = at or _latest_known(facts)
        out.append(event(f"{d}:withdrawn", "withdrawn", max(at, received_at), reason=reason))
    if facts.fee_required and facts.paid_online:
        out.append(event(f"{d}:paid", "paid", received_at, online=True))
    order = {"received": 0, "paid": 1}
    return sorted(out, key=lambda e: (e.time, order.get(e.verb, 2)))


def unpublished(facts: DossierFacts, events: list[Event]) -> list[Event]:
    done = set(facts.published)
    return [e for e in events if e.id not in done]
