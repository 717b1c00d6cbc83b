"""The catalogue of event types: one entry per (sector, data model).

Dossier, document and project events are shared families: every sector may emit them, under
its own type prefix (``vn.gov.thanhhoa.health.dossier.received``). Usage events belong to one
sector. The catalogue is built once at import; lookups are dictionary reads.
"""

import builtins
from dataclasses import dataclass

from schemas.events.base import EventData
from schemas.events.documents import DOCUMENT_EVENTS
from schemas.events.dossiers import DOSSIER_EVENTS
from schemas.events.projects import PROJECT_EVENTS
from schemas.events.usage import USAGE_EVENTS
from schemas.sectors import SECTORS, Sector, event_type
from schemas.topics import sector_topic


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event type: its ``type`` string, emitting sector, data model and family."""

    type: str
    sector: Sector
    model: builtins.type[EventData]
    topic_suffix: str  # the (unprefixed) name of the sector topic it travels on

    @property
    def entity(self) -> str:
        return self.model.ENTITY

    @property
    def verb(self) -> str:
        return self.model.VERB

    @property
    def short_type(self) -> str:
        """``entity.verb``: the type without its sector prefix (the same across sectors)."""
        return f"{self.model.ENTITY}.{self.model.VERB}"


ALL_MODELS: tuple[type[EventData], ...] = (
    *DOSSIER_EVENTS,
    *DOCUMENT_EVENTS,
    *PROJECT_EVENTS,
    *USAGE_EVENTS,
)


def _build() -> dict[str, EventSpec]:
    specs: dict[str, EventSpec] = {}
    for model in ALL_MODELS:
        for sector in SECTORS:
            if model.SECTORS is not None and sector.value not in model.SECTORS:
                continue
            type_ = event_type(sector, model.ENTITY, model.VERB)
            specs[type_] = EventSpec(type=type_, sector=sector, model=model, topic_suffix=sector_topic(sector))
    return specs


EVENT_SPECS: dict[str, EventSpec] = _build()


def spec_for(type_: str) -> EventSpec | None:
    """Return the spec of an event type, or None when the type is unknown."""
    return EVENT_SPECS.get(type_)


def specs_of_sector(sector: Sector | str) -> list[EventSpec]:
    """Every event type one sector may emit, in catalogue order."""
    sector = Sector(sector)
    return [spec for spec in EVENT_SPECS.values() if spec.sector is sector]
