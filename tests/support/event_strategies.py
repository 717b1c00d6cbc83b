"""Hypothesis strategies of event sets for the KPI property tests: stateless events of every
family and whole dossier lives, placed by a strategy of (unit code, minute) and timed from a
window start; every event is a structured-mode CloudEvent dict."""

import datetime as dt
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

SECTORS = ["education", "health", "transport", "culture"]
Step = tuple[str, str, str, int, dict[str, Any]]  # (sector, entity.verb, unit, minute, data)
Place = st.SearchStrategy[tuple[str, int]]  # (unit code, minute from the window start)

ids = st.integers(0, 10**9).map(str)
doc_ids = st.integers(0, 12).map(lambda n: f"VB{n}")  # few: documents are reported again and revoked
channel = st.sampled_from(["online", "app", "counter", "phone", "post"])
payment = st.sampled_from(["cash", "card", "qr", "transfer", "app"])

STATELESS: dict[str, tuple[str, st.SearchStrategy[dict[str, Any]]]] = {
    "document.incoming_registered": (
        "any",
        st.fixed_dictionaries(
            {"document_id": doc_ids, "received_electronically": st.booleans(), "processed_on_system": st.booleans()}
        ),
    ),
    "document.outgoing_issued": (
        "any",
        st.fixed_dictionaries(
            {"document_id": doc_ids, "agency_signed": st.booleans(), "personal_signed": st.booleans()}
        ),
    ),
    "document.revoked": ("any", st.fixed_dictionaries({"document_id": doc_ids})),
    "enrolment.applied": ("education", st.fixed_dictionaries({"channel": channel, "level": st.just("primary")})),
    "elearning.session_completed": (
        "education",
        st.fixed_dictionaries({"minutes": st.integers(1, 900).map(lambda m: m / 10)}),
    ),
    "fee.paid": ("education", st.fixed_dictionaries({"method": payment})),
    "appointment.booked": ("health", st.fixed_dictionaries({"channel": channel})),
    "visit.checked_in": (
        "health",
        st.fixed_dictionaries(
            {"insured": st.booleans(), "id_method": st.sampled_from(["chip_id", "vneid", "insurance_card", "paper"])}
        ),
    ),
    "visit.closed": ("health", st.fixed_dictionaries({"emr": st.booleans()})),
    "telemedicine.consulted": ("health", st.fixed_dictionaries({"minutes": st.just(10.0)})),
    "fare.tapped": ("transport", st.fixed_dictionaries({"route_id": st.just("R1"), "payment": payment})),
    "vehicle.departed": (
        "transport",
        st.fixed_dictionaries({"route_id": st.just("R1"), "delay_seconds": st.integers(-120, 900)}),
    ),
    "parking.session_closed": ("transport", st.fixed_dictionaries({"minutes": st.just(30.0), "payment": payment})),
    "ticket.sold": (
        "culture",
        st.fixed_dictionaries({"site_id": st.just("S1"), "channel": channel, "quantity": st.integers(1, 4)}),
    ),
    "entry.scanned": ("culture", st.fixed_dictionaries({"site_id": st.just("S1"), "count": st.integers(1, 3)})),
    "library.loan_recorded": (
        "culture",
        st.fixed_dictionaries({"format": st.sampled_from(["physical", "electronic"])}),
    ),
}


def envelope(
    sector: str, entity_verb: str, unit_code: str, at: int, data: dict[str, Any], n: int, start: dt.datetime
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e{n}",
        "source": f"/test/{sector}/{unit_code}",
        "type": f"vn.gov.thanhhoa.{sector}.{entity_verb}",
        "time": (start + dt.timedelta(minutes=at)).isoformat(),
        "unit": unit_code,
        "data": data,
    }


@st.composite
def stateless_event(draw: st.DrawFn, place: Place) -> list[Step]:
    kind = draw(st.sampled_from(sorted(STATELESS)))
    owner, data = STATELESS[kind][0], draw(STATELESS[kind][1])
    sector = draw(st.sampled_from(SECTORS)) if owner == "any" else owner
    code, at = draw(place)
    return [(sector, kind, code, at, data)]


@st.composite
def dossier_life(draw: st.DrawFn, place: Place, iso: Callable[[int], str]) -> list[Step]:
    sector = draw(st.sampled_from(SECTORS))
    code, t0 = draw(place)
    did = f"D{draw(ids)}"
    due_days = draw(st.integers(0, 10))  # 0: the procedure has no due time
    steps = [
        (
            sector,
            "dossier.received",
            code,
            t0,
            {
                "dossier_id": did,
                "procedure_code": "1.001",
                "channel": draw(st.sampled_from(["online", "counter", "post"])),
                "due_at": iso(t0 + due_days * 1440) if due_days else None,
                "fee_required": draw(st.booleans()),
                "digitised": draw(st.booleans()),
                "reused_data": draw(st.booleans()),
            },
        )
    ]
    t = t0
    for _ in range(draw(st.integers(0, 2))):
        t += draw(st.integers(10, 3000))
        steps.append((sector, "dossier.supplement_requested", code, t, {"dossier_id": did}))
        if draw(st.booleans()):
            t += draw(st.integers(10, 5000))
            steps.append((sector, "dossier.supplement_resumed", code, t, {"dossier_id": did}))
    ending = draw(st.sampled_from(["open", "resolved", "resolved", "withdrawn"]))
    if ending == "withdrawn":
        reason = draw(st.sampled_from(["withdrawn", "stopped"]))
        steps.append((sector, "dossier.withdrawn", code, t + 60, {"dossier_id": did, "reason": reason}))
    if ending == "resolved":
        t += draw(st.integers(1, 15 * 1440))
        steps.append((sector, "dossier.resolved", code, t, {"dossier_id": did, "e_result": draw(st.booleans())}))
        if draw(st.booleans()):
            steps.append((sector, "dossier.rated", code, t + 30, {"dossier_id": did, "satisfied": draw(st.booleans())}))
    if draw(st.booleans()):
        steps.append((sector, "dossier.paid", code, t0 + 5, {"dossier_id": did, "online": draw(st.booleans())}))
    return steps


@st.composite
def event_sets(
    draw: st.DrawFn, place: Place, start: dt.datetime, valid: Callable[[str, dt.datetime], bool] = lambda _c, _t: True
) -> list[dict[str, Any]]:
    """Events placed by ``place`` from ``start``; a step whose unit is not ``valid`` at its
    time (a dossier outliving its commune at a reform) is left out."""
    iso: Callable[[int], str] = lambda m: (start + dt.timedelta(minutes=m)).isoformat()  # noqa: E731
    lives = st.one_of(stateless_event(place), dossier_life(place, iso))
    groups = draw(st.lists(lives, min_size=1, max_size=40))
    events = []
    steps = [s for group in groups for s in group if valid(s[2], start + dt.timedelta(minutes=s[3]))]
    for n, (sector, kind, code, at, data) in enumerate(steps):
        events.append(envelope(sector, kind, code, at, data, n, start))
    # duplicate deliveries of some events, later in the stream
    for index in draw(st.lists(st.integers(0, len(events) - 1), max_size=5)):
        events.append(dict(events[index]))
    return events
