"""Kafka topics, defined once. Provisioned by ``infra.topics``, described in AsyncAPI.

Names may carry a prefix (``KAFKA_TOPIC_PREFIX``) so that several stacks - or several test
runs - can share one cluster.
"""

from dataclasses import dataclass

from schemas.sectors import SECTORS, Sector

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as it must exist on the cluster."""

    base_name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str
    description: str
    replication_factor: int | None = None  # None: the cluster setting (KAFKA_REPLICATION_FACTOR)

    def name(self, prefix: str = "") -> str:
        return f"{prefix}{self.base_name}"


def sector_topic(sector: Sector | str, prefix: str = "") -> str:
    """Name of the topic that carries one sector's events."""
    return f"{prefix}events.{Sector(sector).value}"


def deadletter_topic(prefix: str = "") -> str:
    return f"{prefix}events.deadletter"


def kpi_updates_topic(prefix: str = "") -> str:
    return f"{prefix}kpi-updates"


def alerts_topic(prefix: str = "") -> str:
    return f"{prefix}alerts"


# Sector topics keep a year and a month so that every KPI of the running and the previous
# year can be rebuilt from history (see docs/operations.md).
SECTOR_RETENTION_MS = 400 * DAY_MS

TOPICS: tuple[TopicSpec, ...] = (
    *(
        TopicSpec(
            base_name=sector_topic(sector),
            partitions=8,
            retention_ms=SECTOR_RETENTION_MS,
            cleanup_policy="delete",
            description=f"Validated {sector.value} events, CloudEvents binary mode, keyed by unit.",
        )
        for sector in SECTORS
    ),
    TopicSpec(
        base_name=deadletter_topic(),
        partitions=1,
        retention_ms=30 * DAY_MS,
        cleanup_policy="delete",
        description="Events the aggregator could not process, with the reason in headers.",
    ),
    TopicSpec(
        base_name=kpi_updates_topic(),
        partitions=4,
        retention_ms=7 * DAY_MS,
        cleanup_policy="delete",
        description="Committed counter changes per (unit, sector, metric, hour), for alerts.",
    ),
    TopicSpec(
        base_name=alerts_topic(),
        partitions=1,
        retention_ms=90 * DAY_MS,
        cleanup_policy="delete",
        description="Alert lifecycle messages (opened, closed).",
    ),
)
