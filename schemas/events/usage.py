"""Sector service usage: what citizens do with the smart-city services of each sector."""

from typing import Literal

from pydantic import Field

from schemas.events.base import EventData, PaymentMethod, Ref, ServiceChannel

# --- education -------------------------------------------------------------------------


class EnrolmentApplied(EventData):
    """An enrolment application reached a school (tuyển sinh)."""

    ENTITY = "enrolment"
    VERB = "applied"
    SECTORS = ("education",)

    channel: ServiceChannel
    level: Literal["preschool", "primary", "lower_secondary", "upper_secondary"]


class ElearningSessionCompleted(EventData):
    """A learner finished an e-learning session."""

    ENTITY = "elearning"
    VERB = "session_completed"
    SECTORS = ("education",)

    minutes: float = Field(gt=0, le=1440)


class SchoolFeePaid(EventData):
    """A school fee was paid."""

    ENTITY = "fee"
    VERB = "paid"
    SECTORS = ("education",)

    method: PaymentMethod


# --- health ----------------------------------------------------------------------------

# Kind of care (insurance claim code MA_LOAI_KCB: 01 outpatient examination, 02 outpatient
# treatment, 03 inpatient, 04 day inpatient; anything else "other").
CareType = Literal["outpatient_exam", "outpatient_treatment", "inpatient", "day_inpatient", "other"]


class AppointmentBooked(EventData):
    """A medical appointment was booked."""

    ENTITY = "appointment"
    VERB = "booked"
    SECTORS = ("health",)

    channel: ServiceChannel


class VisitCheckedIn(EventData):
    """A patient visit was checked in at a facility."""

    ENTITY = "visit"
    VERB = "checked_in"
    SECTORS = ("health",)

    insured: bool = Field(description="The visit is covered by health insurance.")
    id_method: Literal["chip_id", "vneid", "insurance_card", "paper"] = Field(
        description="How the patient was identified: chip ID card, VNeID, insurance card, paper."
    )
    care_type: CareType | None = Field(default=None, description="Kind of care, when the system says.")


class VisitClosed(EventData):
    """A patient visit was closed."""

    ENTITY = "visit"
    VERB = "closed"
    SECTORS = ("health",)

    emr: bool = Field(description="Closed with an electronic medical record.")
    care_type: CareType | None = Field(default=None, description="Kind of care, when the system says.")


class TelemedicineConsulted(EventData):
    """A remote (telemedicine) consultation took place."""

    ENTITY = "telemedicine"
    VERB = "consulted"
    SECTORS = ("health",)

    minutes: float = Field(gt=0, le=1440)


# --- transport -------------------------------------------------------------------------


class FareTapped(EventData):
    """A passenger boarded and paid a fare; every tap is one boarding."""

    ENTITY = "fare"
    VERB = "tapped"
    SECTORS = ("transport",)

    route_id: Ref
    payment: PaymentMethod


class VehicleDeparted(EventData):
    """A public-transport vehicle departed a timing point."""

    ENTITY = "vehicle"
    VERB = "departed"
    SECTORS = ("transport",)

    route_id: Ref
    delay_seconds: int = Field(ge=-86400, le=86400, description="Actual minus scheduled departure; negative is early.")


class ParkingSessionClosed(EventData):
    """A parking session ended and was paid."""

    ENTITY = "parking"
    VERB = "session_closed"
    SECTORS = ("transport",)

    minutes: float = Field(gt=0, le=10080)
    payment: PaymentMethod


# --- culture ---------------------------------------------------------------------------


class TicketSold(EventData):
    """Tickets to a museum, heritage site or performance were sold."""

    ENTITY = "ticket"
    VERB = "sold"
    SECTORS = ("culture",)

    site_id: Ref
    channel: ServiceChannel
    quantity: int = Field(default=1, ge=1, le=1000)


class EntryScanned(EventData):
    """Visitors entered a site (ticket or pass scanned)."""

    ENTITY = "entry"
    VERB = "scanned"
    SECTORS = ("culture",)

    site_id: Ref
    count: int = Field(default=1, ge=1, le=1000)


class LibraryLoanRecorded(EventData):
    """A library lent an item."""

    ENTITY = "library"
    VERB = "loan_recorded"
    SECTORS = ("culture",)

    format: Literal["physical", "electronic"]


USAGE_EVENTS: tuple[type[EventData], ...] = (
    EnrolmentApplied,
    ElearningSessionCompleted,
    SchoolFeePaid,
    AppointmentBooked,
    VisitCheckedIn,
    VisitClosed,
    TelemedicineConsulted,
    FareTapped,
    VehicleDeparted,
    ParkingSessionClosed,
    TicketSold,
    EntryScanned,
    LibraryLoanRecorded,
)
