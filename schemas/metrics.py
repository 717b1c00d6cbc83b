"""The counters KPI formulas are written in: the vocabulary of ``schemas/kpi_registry.toml``.

- ``METRICS``: additive counters the aggregator keeps per (unit, sector, hour/day/month).
- ``LIVE_METRICS``: open dossiers by reception period against the current time, counted
  at query time from dossier state.
- ``SNAPSHOT_METRICS``: counts of e-government projects *now*, for snapshot KPIs.

Where each is computed: ``services/core/kpis/`` (one module per family).
"""

from schemas.events.projects import PROJECT_STAGES

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
    "dossier.resolved_on_time_by_date": (
        "Dossiers resolved on or before their due date (Thanh Hóa's report rule: dates, not times)"
    ),
    "dossier.withdrawn": "Dossiers withdrawn by the applicant or stopped by the office, unresolved",
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

# Computed at query time from project state, now (not per period).
SNAPSHOT_METRICS: dict[str, str] = {
    "project.count": "E-government projects",
    "project.active": "E-government projects not completed",
    "project.on_schedule": "Active projects whose latest progress meets plan, not past their planned completion",
    **{f"project.stage.{stage}": f"Projects in stage {stage}" for stage in PROJECT_STAGES},
}

# Histogram of processing time of resolved dossiers: "dossier.processing_le_<h>h" counts
# resolved dossiers whose processing took at most h hours (cumulative, Prometheus-style).
PROCESSING_HOURS_BUCKETS: tuple[int, ...] = (4, 8, 24, 48, 72, 120, 168, 240, 360, 720)
for _h in PROCESSING_HOURS_BUCKETS:
    METRICS[f"dossier.processing_le_{_h}h"] = f"Resolved dossiers processed within {_h} h"

ALL_METRICS: frozenset[str] = frozenset(METRICS) | frozenset(LIVE_METRICS) | frozenset(SNAPSHOT_METRICS)

# Where each counter family is computed (the first part of its name): "where is KPI X
# computed?" is answered from the counters its formula reads.
FAMILY_MODULES: dict[str, str] = {
    "dossier": "services/core/kpis/dossiers.py",
    "document": "services/core/kpis/documents.py",
    "project": "services/core/kpis/projects.py",
}
USAGE_MODULE = "services/core/kpis/usage.py"
