"""The counters the aggregator maintains: the vocabulary of KPI formulas.

Every counter is additive and kept per (unit, sector, hour/day/month). A KPI is a formula
over these names (see ``schemas/kpi_registry.toml``). Two names are *live* rather than
stored: they count open dossiers by their reception period against the current time, and
are computed at query time from dossier state.
"""

METRICS: dict[str, str] = {
    # administrative procedure dossiers, bucketed by reception time
    "dossier.received": "Dossiers received",
    "dossier.received.online": "Dossiers received through the online channel",
    "dossier.fee_required": "Dossiers that carry a fee",
    "dossier.paid_online": "Dossiers with a fee, paid online",
    "dossier.digitised": "Dossiers whose components were digitised",
    "dossier.data_reused": "Dossiers reusing at least one digitised component",
    "dossier.resolved": "Dossiers resolved",
    "dossier.resolved_on_time": "Dossiers resolved early or on time (pauses excluded, ≤ 1 supplement request)",
    "dossier.resolved_late": "Dossiers resolved late",
    "dossier.e_result": "Dossiers resolved with an electronic result",
    "dossier.processing_seconds": (
        "Σ processing time of resolved dossiers, pauses excluded; "
        "a pause whose end is timed before its start counts as 0 (s)"
    ),
    "dossier.rated": "Dossiers rated by the citizen",
    "dossier.rated_unsatisfied": "Dossiers rated unsatisfied",
    # official documents, bucketed by registration / issue time
    "document.incoming": "Incoming documents registered",
    "document.incoming.on_system": "Incoming documents registered and processed on the system",
    "document.incoming.electronic": "Incoming documents received electronically",
    "document.outgoing": "Outgoing documents issued",
    "document.outgoing.agency_signed": "Outgoing documents with the agency's digital signature",
    "document.outgoing.personal_signed": "Outgoing documents with a personal digital signature",
    # education
    "enrolment.applications": "Enrolment applications",
    "enrolment.applications.online": "Enrolment applications through a digital channel",
    "elearning.sessions": "E-learning sessions",
    "elearning.seconds": "Σ e-learning time (s)",
    "fee.payments": "School fee payments",
    "fee.payments.cashless": "School fee payments not in cash",
    # health
    "appointment.booked": "Appointments booked",
    "appointment.booked.online": "Appointments booked through a digital channel",
    "visit.checked_in": "Visits checked in",
    "visit.insured": "Insured visits checked in",
    "visit.insured.chip_id": "Insured visits checked in with chip ID card or VNeID",
    "visit.closed": "Visits closed",
    "visit.closed.emr": "Visits closed with an electronic medical record",
    "telemedicine.consultations": "Telemedicine consultations",
    # transport
    "fare.boardings": "Boardings (fare taps)",
    "fare.boardings.cashless": "Boardings paid by card, QR, transfer or app",
    "vehicle.departures": "Vehicle departures",
    "vehicle.departures.on_time": "Departures between 0 and +300 s of schedule",
    "parking.sessions": "Parking sessions",
    "parking.sessions.cashless": "Parking sessions not paid in cash",
    # culture
    "ticket.sold": "Tickets sold",
    "ticket.sold.online": "Tickets sold through a digital channel",
    "entry.visits": "Visitor entries",
    "library.loans": "Library loans",
    "library.loans.electronic": "Electronic library loans",
}

# Computed at query time from dossier state, per reception period, against "now".
LIVE_METRICS: dict[str, str] = {
    "dossier.open_not_due": "Open dossiers not yet due (paused time excluded)",
    "dossier.open_overdue": "Open dossiers past due, or with more than one supplement request",
}

# Histogram of processing time of resolved dossiers: "dossier.processing_le_<h>h" counts
# resolved dossiers whose processing took at most h hours (cumulative, Prometheus-style).
PROCESSING_HOURS_BUCKETS: tuple[int, ...] = (4, 8, 24, 48, 72, 120, 168, 240, 360, 720)
for _h in PROCESSING_HOURS_BUCKETS:
    METRICS[f"dossier.processing_le_{_h}h"] = f"Resolved dossiers processed within {_h} h"

ALL_METRICS: frozenset[str] = frozenset(METRICS) | frozenset(LIVE_METRICS)
