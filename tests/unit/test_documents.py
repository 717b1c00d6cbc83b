"""Documents as entities (services/core/kpis/documents.py): a document counts once, in the
hour it was first registered or issued, with the best flags it reached, and not at all once
revoked - whatever the order its reports arrive in."""

import datetime as dt
from itertools import permutations

import pytest

from schemas.events import documents as ev
from schemas.events.dossiers import DossierPaid
from services.core.kpis.documents import DocumentState, apply, contribution, hour_of, new_state

T0 = dt.datetime(2025, 7, 3, 2, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def arrived() -> ev.IncomingDocumentRegistered:
    return ev.IncomingDocumentRegistered(document_id="VB1", received_electronically=True, processed_on_system=False)


def processed() -> ev.IncomingDocumentRegistered:
    return ev.IncomingDocumentRegistered(document_id="VB1", received_electronically=True, processed_on_system=True)


def issued(agency: bool, personal: bool) -> ev.OutgoingDocumentIssued:
    return ev.OutgoingDocumentIssued(document_id="VB1", agency_signed=agency, personal_signed=personal)


def run(steps, unit="14758") -> DocumentState:
    state = new_state("VB1", "general", unit)
    for data, at in steps:
        state = apply(state, data, at, "general", unit)
    return state


def test_an_incoming_document_reported_twice_counts_once_with_its_best_flags() -> None:
    state = run([(arrived(), T0), (processed(), T0 + 5 * H)])
    assert contribution(state) == {
        "document.incoming": 1,
        "document.incoming.on_system": 1,
        "document.incoming.electronic": 1,
    }
    assert hour_of(state) == int(T0.timestamp()) // 3600  # the first registration's hour


@pytest.mark.parametrize("order", list(permutations(range(3))))
def test_the_order_of_reports_does_not_matter(order) -> None:
    steps = [(arrived(), T0), (processed(), T0 + 5 * H), (arrived(), T0 + 9 * H)]
    state = run([steps[i] for i in order])
    assert contribution(state)["document.incoming.on_system"] == 1
    assert state.registered_at == T0


def test_an_outgoing_document_keeps_the_flags_of_its_latest_issue() -> None:
    state = run([(issued(True, False), T0), (issued(True, True), T0 + H), (issued(False, False), T0 - H)])
    assert contribution(state) == {
        "document.outgoing": 1,
        "document.outgoing.agency_signed": 1,
        "document.outgoing.personal_signed": 1,
    }
    assert state.registered_at == T0 - H  # counted in the hour it was first issued


def test_a_revoked_document_counts_no_more_even_when_the_revocation_comes_first() -> None:
    revoke = ev.DocumentRevoked(document_id="VB1")
    assert contribution(run([(issued(True, True), T0), (revoke, T0 + H)])) == {}
    assert contribution(run([(revoke, T0 + H), (issued(True, True), T0)])) == {}
    assert contribution(run([(revoke, T0)])) == {} and hour_of(run([(revoke, T0)])) is None


def test_apply_rejects_an_event_of_another_family() -> None:
    with pytest.raises(TypeError):
        apply(new_state("VB1", "health", "390"), DossierPaid(dossier_id="D", online=True), T0, "health", "390")
