"""Official documents: ``incoming_electronic_rate``, ``outgoing_agency_signed_rate`` and
``outgoing_personal_signed_rate`` are computed here.

A document is an entity keyed by its ``document_id``, like a dossier: its counters are a
pure function of its state (:func:`contribution`), in the hour it was first registered or
issued. So a document reported again - a status update, a re-sent message, an amended
issue - counts once; its flags are the best it reached (incoming: received electronically,
processed on the system) or the latest issued (outgoing signatures); a revoked document
counts no more. Producers use distinct ids for an organ's incoming copy and the sender's
outgoing document.
"""

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

from schemas.events import documents as ev
from schemas.events.base import EventData
from services.core.calendar import hour_number

Direction = Literal["incoming", "outgoing"]
Contribution = dict[str, int]


@dataclass(frozen=True, slots=True)
class DocumentState:
    document_id: str
    sector: str
    unit_code: str
    direction: str | None = None  # None until registered or issued (a revocation came first)
    registered_at: dt.datetime | None = None  # first registration (incoming) or issue (outgoing)
    received_electronically: bool = False
    processed_on_system: bool = False
    agency_signed: bool = False
    personal_signed: bool = False
    flags_at: dt.datetime | None = None  # event time of the outgoing flags kept
    revoked_at: dt.datetime | None = None


def new_state(document_id: str, sector: str, unit_code: str) -> DocumentState:
    return DocumentState(document_id=document_id, sector=sector, unit_code=unit_code)


def _first(state: DocumentState, direction: Direction, at: dt.datetime, sector: str, unit: str) -> DocumentState:
    """Registration time, unit and sector come from the earliest report."""
    if state.registered_at is not None and state.registered_at <= at:
        return state
    return replace(state, direction=direction, registered_at=at, sector=sector, unit_code=unit)


def apply(state: DocumentState, data: EventData, at: dt.datetime, sector: str, unit: str) -> DocumentState:
    """The state after one event that happened at ``at``."""
    if isinstance(data, ev.IncomingDocumentRegistered):
        state = _first(state, "incoming", at, sector, unit)
        return replace(
            state,
            received_electronically=state.received_electronically or data.received_electronically,
            processed_on_system=state.processed_on_system or data.processed_on_system,
        )
    if isinstance(data, ev.OutgoingDocumentIssued):
        state = _first(state, "outgoing", at, sector, unit)
        if state.flags_at is not None and at < state.flags_at:
            return state  # an older issue does not overwrite a newer one
        return replace(state, agency_signed=data.agency_signed, personal_signed=data.personal_signed, flags_at=at)
    if isinstance(data, ev.DocumentRevoked):
        return state if state.revoked_at is not None else replace(state, revoked_at=at)
    raise TypeError(f"not a document event: {type(data).__name__}")


def contribution(state: DocumentState | None) -> Contribution:
    """Counters this document adds to its registration hour; empty once revoked."""
    if state is None or state.registered_at is None or state.revoked_at is not None:
        return {}
    if state.direction == "incoming":
        return {
            "document.incoming": 1,
            "document.incoming.on_system": int(state.processed_on_system),
            "document.incoming.electronic": int(state.received_electronically),
        }
    return {
        "document.outgoing": 1,
        "document.outgoing.agency_signed": int(state.agency_signed),
        "document.outgoing.personal_signed": int(state.personal_signed),
    }


def hour_of(state: DocumentState | None) -> int | None:
    if state is None or state.registered_at is None:
        return None
    return hour_number(state.registered_at)
