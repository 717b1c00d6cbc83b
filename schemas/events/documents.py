"""Official documents (văn bản) handled by an agency, emitted by any sector."""

from pydantic import Field

from schemas.events.base import EventData, Ref


class IncomingDocumentRegistered(EventData):
    """An incoming document was registered by the agency's clerical office."""

    ENTITY = "document"
    VERB = "incoming_registered"

    document_id: Ref
    received_electronically: bool = Field(description="Arrived through the electronic system.")
    processed_on_system: bool = Field(
        description="Registered and processed on the electronic document system (not on paper)."
    )


class OutgoingDocumentIssued(EventData):
    """An outgoing document was issued."""

    ENTITY = "document"
    VERB = "outgoing_issued"

    document_id: Ref
    agency_signed: bool = Field(description="Carries the agency's digital signature.")
    personal_signed: bool = Field(description="Carries the signing leader's personal digital signature.")


class DocumentRevoked(EventData):
    """A document was revoked (or replaced by another): it no longer counts."""

    ENTITY = "document"
    VERB = "revoked"

    document_id: Ref


DOCUMENT_EVENTS: tuple[type[EventData], ...] = (IncomingDocumentRegistered, OutgoingDocumentIssued, DocumentRevoked)
