"""Administrative procedure dossiers (hồ sơ thủ tục hành chính), emitted by any sector.

The reception time of a dossier is the ``time`` of its ``received`` event; the resolution
time is the ``time`` of its ``resolved`` event. Fields are what the Decision 766 indicators
need (see docs/kpi-catalogue.md).
"""

from typing import Literal

from pydantic import AwareDatetime, Field

from schemas.events.base import EventData, Ref

ReceptionChannel = Literal["online", "counter", "post"]


class DossierReceived(EventData):
    """A dossier was received; it is assigned to the period of its reception date."""

    ENTITY = "dossier"
    VERB = "received"

    dossier_id: Ref
    procedure_code: Ref = Field(description="Code of the administrative procedure (mã TTHC).")
    channel: ReceptionChannel
    due_at: AwareDatetime | None = Field(
        description="Legal due time for the result; null when the procedure has none (it is then on time)."
    )
    fee_required: bool = Field(description="The procedure carries a fee or charge (> 0).")
    digitised: bool = Field(default=False, description="Dossier components were digitised.")
    reused_data: bool = Field(default=False, description="At least one already-digitised component was reused.")


class DossierSupplementRequested(EventData):
    """The office asked the citizen to supplement the dossier; the clock pauses."""

    ENTITY = "dossier"
    VERB = "supplement_requested"

    dossier_id: Ref


class DossierSupplementResumed(EventData):
    """The citizen supplemented the dossier; the clock runs again."""

    ENTITY = "dossier"
    VERB = "supplement_resumed"

    dossier_id: Ref


class DossierResolved(EventData):
    """The dossier was resolved (result issued or refused with reasons)."""

    ENTITY = "dossier"
    VERB = "resolved"

    dossier_id: Ref
    e_result: bool = Field(description="A legally valid electronic result was issued.")


class DossierWithdrawn(EventData):
    """The dossier left processing without a result: withdrawn by the applicant, or processing
    stopped by the office. It no longer counts as open, and not in the on-time rate."""

    ENTITY = "dossier"
    VERB = "withdrawn"

    dossier_id: Ref
    reason: Literal["withdrawn", "stopped"] = Field(
        default="withdrawn", description="withdrawn: by the applicant; stopped: processing stopped by the office."
    )


class DossierPaid(EventData):
    """The fee of a dossier was paid."""

    ENTITY = "dossier"
    VERB = "paid"

    dossier_id: Ref
    online: bool = Field(description="Paid through an online payment channel.")


class DossierRated(EventData):
    """The citizen rated the handling of the dossier."""

    ENTITY = "dossier"
    VERB = "rated"

    dossier_id: Ref
    satisfied: bool


DOSSIER_EVENTS: tuple[type[EventData], ...] = (
    DossierReceived,
    DossierSupplementRequested,
    DossierSupplementResumed,
    DossierResolved,
    DossierWithdrawn,
    DossierPaid,
    DossierRated,
)
