"""Sectors and the event type naming rule (``vn.gov.thanhhoa.<sector>.<entity>.<verb>``)."""

from enum import StrEnum

TYPE_PREFIX = "vn.gov.thanhhoa"


class Sector(StrEnum):
    """A sector owns one ingestion service and one Kafka topic."""

    EDUCATION = "education"
    HEALTH = "health"
    TRANSPORT = "transport"
    CULTURE = "culture"


SECTORS: tuple[Sector, ...] = tuple(Sector)


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
