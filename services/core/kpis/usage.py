"""Sector service usage: the education, health, transport and culture KPIs are computed here
(``online_enrolment_rate``, ``elearning_minutes``, ``cashless_fee_rate``,
``online_booking_rate``, ``chip_id_checkin_rate``, ``emr_rate``, ``telemedicine_per_100k``,
``ridership``, ``on_time_performance``, ``cashless_fare_rate``, ``eticket_rate``,
``visits``, ``library_loans`` and the usage part of ``digital_take_up``).

Usage events are stateless: each adds to counters in its own event hour, by the rule of its
type. Dossiers, documents and projects are entities (``dossiers``, ``documents``,
``projects``).
"""

from collections.abc import Callable

from schemas.events import base, usage
from schemas.events.base import EventData

Contribution = tuple[tuple[str, int], ...]
Rule = Callable[[EventData], Contribution]

_DIGITAL = base.DIGITAL_CHANNELS


def _enrolment(d: EventData) -> Contribution:
    assert isinstance(d, usage.EnrolmentApplied)
    return (("enrolment.applications", 1), ("enrolment.applications.online", int(d.channel in _DIGITAL)))


def _elearning(d: EventData) -> Contribution:
    assert isinstance(d, usage.ElearningSessionCompleted)
    return (("elearning.sessions", 1), ("elearning.seconds", round(d.minutes * 60)))


def _school_fee(d: EventData) -> Contribution:
    assert isinstance(d, usage.SchoolFeePaid)
    return (("fee.payments", 1), ("fee.payments.cashless", int(d.method != "cash")))


def _appointment(d: EventData) -> Contribution:
    assert isinstance(d, usage.AppointmentBooked)
    return (("appointment.booked", 1), ("appointment.booked.online", int(d.channel in _DIGITAL)))


def _checkin(d: EventData) -> Contribution:
    assert isinstance(d, usage.VisitCheckedIn)
    chip = d.insured and d.id_method in ("chip_id", "vneid")
    return (("visit.checked_in", 1), ("visit.insured", int(d.insured)), ("visit.insured.chip_id", int(chip)))


def _visit_closed(d: EventData) -> Contribution:
    assert isinstance(d, usage.VisitClosed)
    return (("visit.closed", 1), ("visit.closed.emr", int(d.emr)))


def _telemedicine(d: EventData) -> Contribution:
    return (("telemedicine.consultations", 1),)


def _fare(d: EventData) -> Contribution:
    assert isinstance(d, usage.FareTapped)
    return (("fare.boardings", 1), ("fare.boardings.cashless", int(d.payment != "cash")))


def _departure(d: EventData) -> Contribution:
    assert isinstance(d, usage.VehicleDeparted)
    return (("vehicle.departures", 1), ("vehicle.departures.on_time", int(0 <= d.delay_seconds <= 300)))


def _parking(d: EventData) -> Contribution:
    assert isinstance(d, usage.ParkingSessionClosed)
    return (("parking.sessions", 1), ("parking.sessions.cashless", int(d.payment != "cash")))


def _ticket(d: EventData) -> Contribution:
    assert isinstance(d, usage.TicketSold)
    return (("ticket.sold", d.quantity), ("ticket.sold.online", d.quantity * (d.channel in _DIGITAL)))


def _entry(d: EventData) -> Contribution:
    assert isinstance(d, usage.EntryScanned)
    return (("entry.visits", d.count),)


def _loan(d: EventData) -> Contribution:
    assert isinstance(d, usage.LibraryLoanRecorded)
    return (("library.loans", 1), ("library.loans.electronic", int(d.format == "electronic")))


RULES: dict[type[EventData], Rule] = {
    usage.EnrolmentApplied: _enrolment,
    usage.ElearningSessionCompleted: _elearning,
    usage.SchoolFeePaid: _school_fee,
    usage.AppointmentBooked: _appointment,
    usage.VisitCheckedIn: _checkin,
    usage.VisitClosed: _visit_closed,
    usage.TelemedicineConsulted: _telemedicine,
    usage.FareTapped: _fare,
    usage.VehicleDeparted: _departure,
    usage.ParkingSessionClosed: _parking,
    usage.TicketSold: _ticket,
    usage.EntryScanned: _entry,
    usage.LibraryLoanRecorded: _loan,
}
