"""Sectors and the event type naming rule (``vn.gov.thanhhoa.<sector>.<entity>.<verb>``)."""

from enum import StrEnum

TYPE_PREFIX = "vn.gov.thanhhoa"


class Sector(StrEnum):
    """A sector owns one Kafka topic. The four service sectors also own an ingestion service;
    ``general`` holds the dossiers of procedures outside them (land, justice, construction…),
    which the connectors publish and which count in every province-wide dossier KPI."""

    EDUCATION = "education"
    HEALTH = "health"
    TRANSPORT = "transport"
    CULTURE = "culture"
    GENERAL = "general"


SECTORS: tuple[Sector, ...] = tuple(Sector)
# sectors with their own ingestion service (``services.<sector>``)
INGEST_SECTORS: tuple[Sector, ...] = (Sector.EDUCATION, Sector.HEALTH, Sector.TRANSPORT, Sector.CULTURE)


def event_type(sector: Sector | str, entity: str, verb: str) -> str:
    """Return the reverse-DNS CloudEvents ``type`` for one sector, entity and verb."""
    return f"{TYPE_PREFIX}.{Sector(sector).value}.{entity}.{verb}"


def sector_of(type_: str) -> Sector | None:
    """Return the sector named in an event type, or None when the type is not ours."""
    parts = type_.split(".")
    if len(parts) != 6 or ".".join(parts[:3]) != TYPE_PREFIX:
        return None
    try:
        return Sector(parts[3])
    except ValueError:
        return None
