"""Dossier state and what a dossier contributes to the counters.

A dossier's counters are a pure function of its state (:func:`contribution`), keyed by the
hour it was received in: the catalogue assigns a dossier to the period of its reception.
Applying an event changes the state; the counter delta is ``contribution(new) -
contribution(old)``. Whatever order the events of one dossier arrive in, the counters end
up equal to the contribution of its final state, and a replayed or duplicated event cannot
count twice.

On-time rule (practice of the national portal): the time spent waiting for the citizen to
supplement the dossier does not count, and more than one supplement request is late.
"""

import datetime as dt
from dataclasses import dataclass, replace

from schemas.events import dossiers as ev
from schemas.events.base import EventData
from schemas.metrics import PROCESSING_HOURS_BUCKETS

Contribution = dict[str, int]


@dataclass(frozen=True, slots=True)
class DossierState:
    dossier_id: str
    sector: str
    unit_code: str
    received_at: dt.datetime | None = None
    due_at: dt.datetime | None = None
    channel: str | None = None
    procedure_code: str | None = None
    fee_required: bool | None = None
    digitised: bool | None = None
    reused_data: bool | None = None
    supplement_count: int = 0
    paused_seconds: int = 0
    pause_started_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    e_result: bool | None = None
    paid_online: bool | None = None
    satisfied: bool | None = None

    def effective_due(self) -> dt.datetime | None:
        """Due time extended by the time spent waiting for supplements."""
        if self.due_at is None:
            return None
        return self.due_at + dt.timedelta(seconds=self.paused_seconds)

    def resolved_on_time(self) -> bool | None:
        if self.resolved_at is None or self.due_at is None:
            return None
        due = self.effective_due()
        assert due is not None
        return self.supplement_count <= 1 and self.resolved_at <= due

    def processing_seconds(self) -> int | None:
        if self.resolved_at is None or self.received_at is None:
            return None
        elapsed = (self.resolved_at - self.received_at).total_seconds() - self.paused_seconds
        return max(0, round(elapsed))

    def overdue_at(self, now: dt.datetime) -> bool:
        """An open dossier is overdue when past its (pause-extended) due time, or asked for
        supplements more than once. While paused, the clock stands still."""
        if self.resolved_at is not None or self.due_at is None:
            return False
        if self.supplement_count > 1:
            return True
        paused = self.paused_seconds
        if self.pause_started_at is not None:
            paused += max(0, round((now - self.pause_started_at).total_seconds()))
        return now > self.due_at + dt.timedelta(seconds=paused)


def new_state(dossier_id: str, sector: str, unit_code: str) -> DossierState:
    return DossierState(dossier_id=dossier_id, sector=sector, unit_code=unit_code)


def apply(state: DossierState, data: EventData, at: dt.datetime, sector: str, unit: str) -> DossierState:
    """The state after one event that happened at ``at`` (its CloudEvents ``time``)."""
    if isinstance(data, ev.DossierReceived):
        return replace(
            state,
            sector=sector,
            unit_code=unit,
            received_at=at,
            due_at=data.due_at,
            channel=data.channel,
            procedure_code=data.procedure_code,
            fee_required=data.fee_required,
            digitised=data.digitised,
            reused_data=data.reused_data,
        )
    if isinstance(data, ev.DossierSupplementRequested):
        return replace(
            state,
            supplement_count=state.supplement_count + 1,
            pause_started_at=state.pause_started_at or at,
        )
    if isinstance(data, ev.DossierSupplementResumed):
        if state.pause_started_at is None:
            return state  # a resume without an open pause carries no time to exclude
        paused = max(0, round((at - state.pause_started_at).total_seconds()))
        return replace(state, paused_seconds=state.paused_seconds + paused, pause_started_at=None)
    if isinstance(data, ev.DossierResolved):
        # resolved while waiting for a supplement: the wait up to now is excluded too
        waited = 0
        if state.pause_started_at is not None:
            waited = max(0, round((at - state.pause_started_at).total_seconds()))
        return replace(
            state,
            resolved_at=at,
            e_result=data.e_result,
            pause_started_at=None,
            paused_seconds=state.paused_seconds + waited,
        )
    if isinstance(data, ev.DossierPaid):
        return replace(state, paid_online=bool(state.paid_online) or data.online)
    if isinstance(data, ev.DossierRated):
        return replace(state, satisfied=data.satisfied)
    raise TypeError(f"not a dossier event: {type(data).__name__}")


def contribution(state: DossierState | None) -> Contribution:
    """Counters this dossier adds to its reception hour; empty until it has been received."""
    if state is None or state.received_at is None:
        return {}
    out: Contribution = {"dossier.received": 1}
    if state.channel == "online":
        out["dossier.received.online"] = 1
    if state.fee_required:
        out["dossier.fee_required"] = 1
        if state.paid_online:
            out["dossier.paid_online"] = 1
    if state.digitised:
        out["dossier.digitised"] = 1
    if state.reused_data:
        out["dossier.data_reused"] = 1
    on_time = state.resolved_on_time()
    if on_time is not None:
        out["dossier.resolved"] = 1
        out["dossier.resolved_on_time" if on_time else "dossier.resolved_late"] = 1
        if state.e_result:
            out["dossier.e_result"] = 1
        seconds = state.processing_seconds()
        assert seconds is not None
        out["dossier.processing_seconds"] = seconds
        for hours in PROCESSING_HOURS_BUCKETS:
            if seconds <= hours * 3600:
                out[f"dossier.processing_le_{hours}h"] = 1
    if state.satisfied is not None:
        out["dossier.rated"] = 1
        if not state.satisfied:
            out["dossier.rated_unsatisfied"] = 1
    return out


def hour_of(state: DossierState | None) -> int | None:
    """The reception hour (hours since the epoch) the dossier's counters live in."""
    if state is None or state.received_at is None:
        return None
    return int(state.received_at.timestamp()) // 3600
