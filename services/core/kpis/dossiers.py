"""Administrative procedure dossiers: the Decision 766 dossier indicators are computed here.

KPIs of the registry that read these counters: ``dossier_on_time_rate``,
``dossier_on_time_by_date_rate``, ``avg_processing_hours``, ``processing_p50_hours``,
``processing_p90_hours``, ``online_submission_rate``, ``online_payment_rate``,
``e_result_rate``, ``digitisation_rate``, ``data_reuse_rate``, ``satisfaction_rate`` and
``digital_take_up`` (with other families).

A dossier's counters are a pure function of its state (:func:`contribution`), keyed by the
hour it was received in: the catalogue assigns a dossier to the period of its reception.
Applying an event changes the state; the counter delta is ``contribution(new) -
contribution(old)``. Whatever order the events of one dossier arrive in, the counters end
up equal to the contribution of its final state, and a replayed event cannot count twice.

Two on-time rules, both kept:

- **Decision 766** (time, national portal practice): resolved by the due time extended by
  the time spent waiting for the citizen's supplement, and at most one supplement request.
- **Thanh Hóa's own report** (date): the local *date* of resolution is on or before the
  local date of the (supplement-extended) due time; more supplement requests do not matter.

A dossier without a due time is on time under both. A withdrawn or stopped dossier leaves
processing without a result: it is no longer open and leaves the on-time rate.

The overdue rule runs twice - in Python for the aggregator and the API, and as SQL over the
``dossiers`` table for live counts (:data:`OPEN_SQL`, :data:`OVERDUE_SQL`); a test checks
that the twins agree.
"""

import datetime as dt
from dataclasses import dataclass, replace

from schemas.events import dossiers as ev
from schemas.events.base import EventData
from schemas.metrics import PROCESSING_HOURS_BUCKETS
from services.core.calendar import hour_number, local_date

Contribution = dict[str, int]


def _pause(start: dt.datetime, end: dt.datetime) -> int:
    """Seconds of a pause; a pause timed to end before it starts counts as 0."""
    return max(0, round((end - start).total_seconds()))


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
    withdrawn_at: dt.datetime | None = None
    withdrawal_reason: str | None = None

    @property
    def is_open(self) -> bool:
        """Received and neither resolved nor withdrawn."""
        return self.received_at is not None and self.resolved_at is None and self.withdrawn_at is None

    def effective_due(self) -> dt.datetime | None:
        """Due time extended by the time spent waiting for supplements."""
        if self.due_at is None:
            return None
        return self.due_at + dt.timedelta(seconds=self.paused_seconds)

    def resolved_on_time(self) -> bool | None:
        """Decision 766 rule; None until resolved."""
        if self.resolved_at is None:
            return None
        due = self.effective_due()
        return self.supplement_count <= 1 and (due is None or self.resolved_at <= due)

    def resolved_on_time_by_date(self) -> bool | None:
        """Thanh Hóa's report rule (dates, not times); None until resolved."""
        if self.resolved_at is None:
            return None
        due = self.effective_due()
        return due is None or local_date(self.resolved_at) <= local_date(due)

    def processing_seconds(self) -> int | None:
        if self.resolved_at is None or self.received_at is None:
            return None
        elapsed = (self.resolved_at - self.received_at).total_seconds() - self.paused_seconds
        return max(0, round(elapsed))

    def overdue_at(self, now: dt.datetime) -> bool:
        """An open dossier is overdue when asked for supplements more than once, or when past
        its (pause-extended) due time. While paused, the clock stands still.
        SQL twin: :data:`OVERDUE_SQL`."""
        if not self.is_open:
            return False
        if self.supplement_count > 1:
            return True
        if self.due_at is None:
            return False
        paused = self.paused_seconds
        if self.pause_started_at is not None:
            paused += _pause(self.pause_started_at, now)
        return now > self.due_at + dt.timedelta(seconds=paused)


# SQL twins over ``dossiers d``, for live counts at query time. ``$NOW`` is replaced by the
# caller with its parameter of the current time. They must agree with ``is_open`` and
# ``overdue_at`` (tests/integration/test_sql_twins.py).
OPEN_SQL = "(d.received_at IS NOT NULL AND d.resolved_at IS NULL AND d.withdrawn_at IS NULL)"
OVERDUE_SQL = """(d.supplement_count > 1 OR (d.due_at IS NOT NULL AND $NOW > d.due_at + make_interval(secs =>
    d.paused_seconds + CASE WHEN d.pause_started_at IS NULL THEN 0
                            ELSE GREATEST(0, round(EXTRACT(EPOCH FROM ($NOW - d.pause_started_at)))) END)))"""


def overdue_sql(now_param: str) -> str:
    """:data:`OVERDUE_SQL` with ``now_param`` (e.g. ``"$2"``) as the current time."""
    return OVERDUE_SQL.replace("$NOW", now_param)


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
        paused = _pause(state.pause_started_at, at)
        return replace(state, paused_seconds=state.paused_seconds + paused, pause_started_at=None)
    if isinstance(data, ev.DossierResolved):
        # resolved while waiting for a supplement: the wait up to now is excluded too
        waited = _pause(state.pause_started_at, at) if state.pause_started_at is not None else 0
        return replace(
            state,
            resolved_at=at,
            e_result=data.e_result,
            pause_started_at=None,
            paused_seconds=state.paused_seconds + waited,
        )
    if isinstance(data, ev.DossierWithdrawn):
        return replace(state, withdrawn_at=at, withdrawal_reason=data.reason)
    if isinstance(data, ev.DossierPaid):
        return replace(state, paid_online=bool(state.paid_online) or data.online)
    if isinstance(data, ev.DossierRated):
        return replace(state, satisfied=data.satisfied)
    raise TypeError(f"not a dossier event: {type(data).__name__}")


def _resolution(state: DossierState, out: Contribution) -> None:
    on_time = state.resolved_on_time()
    if on_time is None:
        if state.withdrawn_at is not None:
            out["dossier.withdrawn"] = 1
        return
    out["dossier.resolved"] = 1
    out["dossier.resolved_on_time" if on_time else "dossier.resolved_late"] = 1
    if state.resolved_on_time_by_date():
        out["dossier.resolved_on_time_by_date"] = 1
    if state.e_result:
        out["dossier.e_result"] = 1
    seconds = state.processing_seconds() or 0
    out["dossier.processing_seconds"] = seconds
    for hours in PROCESSING_HOURS_BUCKETS:
        if seconds <= hours * 3600:
            out[f"dossier.processing_le_{hours}h"] = 1


def contribution(state: DossierState | None) -> Contribution:
    """Counters this dossier adds to its reception hour; empty until it has been received.
    A resolution counts over a withdrawal that arrives for a resolved dossier."""
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
    _resolution(state, out)
    if state.satisfied is not None:
        out["dossier.rated"] = 1
        if not state.satisfied:
            out["dossier.rated_unsatisfied"] = 1
    return out


def hour_of(state: DossierState | None) -> int | None:
    """The reception hour (hours since the epoch) the dossier's counters live in."""
    if state is None or state.received_at is None:
        return None
    return hour_number(state.received_at)
