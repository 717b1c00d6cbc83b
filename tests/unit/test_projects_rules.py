"""Project snapshots (latest event time wins, schedule status, snapshot counters) and the
counter rules of stateless usage events (services/core/kpis/projects.py, usage.py)."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import usage
from schemas.events.catalogue import ALL_MODELS
from schemas.events.documents import DOCUMENT_EVENTS
from schemas.events.dossiers import DOSSIER_EVENTS, DossierResolved
from schemas.events.projects import PROJECT_EVENTS, PROJECT_STAGES, ProjectProgressReported, ProjectStageChanged
from schemas.metrics import METRICS
from services.core.kpis import projects
from services.core.kpis.usage import RULES

T0 = dt.datetime(2025, 3, 1, 8, tzinfo=dt.UTC)
PID = "PRJ-2025-01"


def fresh() -> projects.ProjectState:
    return projects.ProjectState(PID, "health", "38")


def stage(name: str, **kw) -> ProjectStageChanged:
    return ProjectStageChanged(project_id=PID, stage=name, **kw)


def progress(done: float, planned: float) -> ProjectProgressReported:
    return ProjectProgressReported(project_id=PID, percent_complete=done, planned_percent=planned)


def fold(items) -> projects.ProjectState:
    state = fresh()
    for data, at in items:
        state = projects.apply(state, data, at, "health", "38")
    return state


# --- projects ---------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(PROJECT_STAGES), st.integers(0, 10_000)),
        min_size=1,
        max_size=6,
        unique_by=lambda x: x[1],
    ),
    st.randoms(use_true_random=False),
)
def test_latest_stage_by_event_time_wins_whatever_the_arrival_order(changes, rnd):
    items = [(stage(name), T0 + dt.timedelta(minutes=m)) for name, m in changes]
    rnd.shuffle(items)
    latest_name, latest_at = max(changes, key=lambda x: x[1])
    state = fold(items)
    assert state.stage == latest_name
    assert state.stage_changed_at == T0 + dt.timedelta(minutes=latest_at)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 100), st.floats(0, 100), st.integers(0, 10_000)),
        min_size=1,
        max_size=6,
        unique_by=lambda x: x[2],
    ),
    st.randoms(use_true_random=False),
)
def test_latest_progress_by_event_time_wins_whatever_the_arrival_order(reports, rnd):
    items = [(progress(d, p), T0 + dt.timedelta(minutes=m)) for d, p, m in reports]
    rnd.shuffle(items)
    d, p, _ = max(reports, key=lambda x: x[2])
    state = fold(items)
    assert (state.percent_complete, state.planned_percent) == (d, p)


def test_a_late_older_report_never_overwrites_a_newer_one():
    state = fold([(stage("in_progress"), T0 + dt.timedelta(days=2)), (stage("design"), T0)])
    assert state.stage == "in_progress"
    state = fold([(progress(60, 50), T0 + dt.timedelta(days=2)), (progress(10, 90), T0)])
    assert state.percent_complete == 60


def test_title_and_plan_survive_a_newer_stage_event_that_omits_them():
    state = fold(
        [
            (stage("proposal", title="Cổng dữ liệu", planned_completion=dt.date(2026, 6, 30)), T0),
            (stage("design"), T0 + dt.timedelta(days=1)),
        ]
    )
    assert state.stage == "design"
    assert state.title == "Cổng dữ liệu"
    assert state.planned_completion == dt.date(2026, 6, 30)


def test_an_older_stage_event_arriving_late_still_supplies_a_missing_plan():
    first = (stage("proposal", title="Cổng dữ liệu", planned_completion=dt.date(2025, 6, 30)), T0)
    second = (stage("design"), T0 + dt.timedelta(days=1))
    in_order, reversed_ = fold([first, second]), fold([second, first])
    assert reversed_ == in_order
    assert projects.schedule_status(reversed_, dt.date(2025, 7, 1)) == "overdue"


def test_apply_rejects_an_event_of_another_family():
    with pytest.raises(TypeError):
        projects.apply(fresh(), DossierResolved(dossier_id="D1", e_result=True), T0, "health", "38")


@pytest.mark.parametrize(
    ("state_kw", "today", "expected"),
    [
        (dict(stage="completed", planned_completion=dt.date(2020, 1, 1)), dt.date(2025, 1, 1), "completed"),
        (
            dict(
                stage="in_progress", planned_completion=dt.date(2025, 1, 1), percent_complete=90.0, planned_percent=50.0
            ),
            dt.date(2025, 1, 2),
            "overdue",
        ),
        (
            dict(
                stage="in_progress", planned_completion=dt.date(2025, 1, 1), percent_complete=90.0, planned_percent=50.0
            ),
            dt.date(2025, 1, 1),
            "on_schedule",
        ),  # due today: not yet overdue
        (dict(stage="in_progress"), dt.date(2025, 1, 1), "no_report"),
        (dict(stage="in_progress", percent_complete=50.0), dt.date(2025, 1, 1), "no_report"),
        (dict(stage="in_progress", percent_complete=50.0, planned_percent=50.0), dt.date(2025, 1, 1), "on_schedule"),
        (dict(stage="in_progress", percent_complete=49.9, planned_percent=50.0), dt.date(2025, 1, 1), "behind"),
        (dict(stage=None, percent_complete=0.0, planned_percent=0.0), dt.date(2025, 1, 1), "on_schedule"),
    ],
)
def test_schedule_status(state_kw, today, expected):
    state = projects.ProjectState(PID, "health", "38", **state_kw)
    assert projects.schedule_status(state, today) == expected


# --- stateless rules ---------------------------------------------------------------------------


def counters(data) -> dict[str, int]:
    return dict(RULES[type(data)](data))


def test_every_stateless_event_type_has_a_rule_and_stateful_ones_do_not():
    stateful = set(DOSSIER_EVENTS) | set(PROJECT_EVENTS) | set(DOCUMENT_EVENTS)
    assert set(RULES) == set(ALL_MODELS) - stateful


def test_rules_only_name_known_counters():
    samples = {
        usage.EnrolmentApplied: dict(channel="app", level="primary"),
        usage.ElearningSessionCompleted: dict(minutes=1.5),
        usage.SchoolFeePaid: dict(method="qr"),
        usage.AppointmentBooked: dict(channel="phone"),
        usage.VisitCheckedIn: dict(insured=True, id_method="vneid"),
        usage.VisitClosed: dict(emr=True),
        usage.TelemedicineConsulted: dict(minutes=10),
        usage.FareTapped: dict(route_id="R01", payment="card"),
        usage.VehicleDeparted: dict(route_id="R01", delay_seconds=0),
        usage.ParkingSessionClosed: dict(minutes=30, payment="cash"),
        usage.TicketSold: dict(site_id="S1", channel="online", quantity=2),
        usage.EntryScanned: dict(site_id="S1", count=3),
        usage.LibraryLoanRecorded: dict(format="physical"),
    }
    assert set(samples) == set(RULES)
    for model, kw in samples.items():
        produced = counters(model(**kw))
        assert produced, model
        assert set(produced) <= set(METRICS), model
        assert all(v >= 0 for v in produced.values())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (usage.FareTapped(route_id="R01", payment="cash"), {"fare.boardings": 1, "fare.boardings.cashless": 0}),
        (usage.FareTapped(route_id="R01", payment="qr"), {"fare.boardings": 1, "fare.boardings.cashless": 1}),
        (
            usage.VehicleDeparted(route_id="R01", delay_seconds=0),
            {"vehicle.departures": 1, "vehicle.departures.on_time": 1},
        ),
        (
            usage.VehicleDeparted(route_id="R01", delay_seconds=300),
            {"vehicle.departures": 1, "vehicle.departures.on_time": 1},
        ),
        (
            usage.VehicleDeparted(route_id="R01", delay_seconds=301),
            {"vehicle.departures": 1, "vehicle.departures.on_time": 0},
        ),
        (
            usage.VehicleDeparted(route_id="R01", delay_seconds=-1),
            {"vehicle.departures": 1, "vehicle.departures.on_time": 0},
        ),
        (
            usage.ParkingSessionClosed(minutes=5, payment="cash"),
            {"parking.sessions": 1, "parking.sessions.cashless": 0},
        ),
        (usage.ParkingSessionClosed(minutes=5, payment="app"), {"parking.sessions": 1, "parking.sessions.cashless": 1}),
        (usage.SchoolFeePaid(method="cash"), {"fee.payments": 1, "fee.payments.cashless": 0}),
        (usage.SchoolFeePaid(method="transfer"), {"fee.payments": 1, "fee.payments.cashless": 1}),
        (
            usage.EnrolmentApplied(channel="online", level="primary"),
            {"enrolment.applications": 1, "enrolment.applications.online": 1},
        ),
        (
            usage.EnrolmentApplied(channel="app", level="preschool"),
            {"enrolment.applications": 1, "enrolment.applications.online": 1},
        ),
        (
            usage.EnrolmentApplied(channel="counter", level="primary"),
            {"enrolment.applications": 1, "enrolment.applications.online": 0},
        ),
        (usage.AppointmentBooked(channel="post"), {"appointment.booked": 1, "appointment.booked.online": 0}),
        (usage.AppointmentBooked(channel="app"), {"appointment.booked": 1, "appointment.booked.online": 1}),
        (usage.ElearningSessionCompleted(minutes=1.5), {"elearning.sessions": 1, "elearning.seconds": 90}),
        (
            usage.VisitCheckedIn(insured=True, id_method="chip_id"),
            {"visit.checked_in": 1, "visit.insured": 1, "visit.insured.chip_id": 1},
        ),
        (
            usage.VisitCheckedIn(insured=True, id_method="vneid"),
            {"visit.checked_in": 1, "visit.insured": 1, "visit.insured.chip_id": 1},
        ),
        (
            usage.VisitCheckedIn(insured=True, id_method="insurance_card"),
            {"visit.checked_in": 1, "visit.insured": 1, "visit.insured.chip_id": 0},
        ),
        (
            usage.VisitCheckedIn(insured=False, id_method="chip_id"),
            {"visit.checked_in": 1, "visit.insured": 0, "visit.insured.chip_id": 0},
        ),
        (usage.VisitClosed(emr=False), {"visit.closed": 1, "visit.closed.emr": 0}),
        (usage.TelemedicineConsulted(minutes=3), {"telemedicine.consultations": 1}),
        (usage.TicketSold(site_id="S1", channel="online", quantity=4), {"ticket.sold": 4, "ticket.sold.online": 4}),
        (usage.TicketSold(site_id="S1", channel="counter", quantity=4), {"ticket.sold": 4, "ticket.sold.online": 0}),
        (usage.EntryScanned(site_id="S1", count=7), {"entry.visits": 7}),
        (usage.LibraryLoanRecorded(format="electronic"), {"library.loans": 1, "library.loans.electronic": 1}),
        (usage.LibraryLoanRecorded(format="physical"), {"library.loans": 1, "library.loans.electronic": 0}),
    ],
)
def test_rule_counters(data, expected):
    assert counters(data) == expected


@given(st.integers(-86400, 86400))
def test_departure_on_time_window_is_zero_to_three_hundred_seconds(delay):
    got = counters(usage.VehicleDeparted(route_id="R01", delay_seconds=delay))
    assert got["vehicle.departures"] == 1
    assert got["vehicle.departures.on_time"] == (1 if 0 <= delay <= 300 else 0)


@given(st.sampled_from(["online", "app", "counter", "phone", "post"]), st.integers(1, 1000))
def test_online_tickets_never_exceed_tickets_sold(channel, quantity):
    got = counters(usage.TicketSold(site_id="S1", channel=channel, quantity=quantity))
    assert got["ticket.sold"] == quantity
    assert got["ticket.sold.online"] in (0, quantity)
