"""Building blocks shared by every event ``data`` model."""

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

# Identifiers issued by sector systems (dossier numbers, document numbers, route ids).
# The pattern keeps free text - and with it names and other personal data - out of events.
Ref = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
        description="Identifier issued by the sector system; no spaces, no personal data.",
        examples=["000.00.28.H56-250505-0001"],
    ),
]

# Channels through which a citizen reaches a service. "online" and "app" are digital.
ServiceChannel = Literal["online", "app", "counter", "phone", "post"]
DIGITAL_CHANNELS: frozenset[str] = frozenset({"online", "app"})

PaymentMethod = Literal["cash", "card", "qr", "transfer", "app"]


class EventData(BaseModel):
    """Base of every event ``data`` model: immutable, closed (unknown fields are errors).

    Subclasses set ``ENTITY`` and ``VERB``; the full ``type`` is built per sector by
    :mod:`schemas.events.catalogue`. ``SECTORS`` limits which sectors may emit the event
    (None: every sector).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    ENTITY: ClassVar[str]
    VERB: ClassVar[str]
    SECTORS: ClassVar[tuple[str, ...] | None] = None
