"""Provision the topics of ``schemas.topics`` idempotently with kafka-python's admin client.

Missing topics are created with their partitions, replication factor, retention and cleanup
policy. Existing topics are left alone: a partition count below the declared one is
reported, never raised automatically, because adding partitions moves units to other
partitions and breaks the per-unit ordering the aggregator relies on.
"""

from dataclasses import dataclass

import structlog
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from schemas.topics import TOPICS, TopicSpec
from services.runtime.settings import KafkaSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    created: tuple[str, ...]
    existing: tuple[str, ...]
    drift: tuple[str, ...]


def new_topic(spec: TopicSpec, settings: KafkaSettings) -> NewTopic:
    replication = spec.replication_factor or settings.replication_factor
    configs = {"retention.ms": str(spec.retention_ms), "cleanup.policy": spec.cleanup_policy}
    if replication > 1:
        configs["min.insync.replicas"] = str(min(2, replication))
    return NewTopic(
        name=spec.name(settings.topic_prefix),
        num_partitions=spec.partitions,
        replication_factor=replication,
        topic_configs=configs,
    )


def provision_topics(
    settings: KafkaSettings,
    topics: tuple[TopicSpec, ...] = TOPICS,
    *,
    timeout_ms: int = 15_000,
) -> ProvisionReport:
    """Create every missing topic. Blocking; safe to call concurrently and repeatedly."""
    admin = KafkaAdminClient(**settings.kafka_python(), client_id="smartcity-provision", request_timeout_ms=timeout_ms)
    try:
        existing = {
            t.get("name", t.get("topic")): len(t["partitions"])
            for t in admin.describe_topics()
            if not t.get("is_internal", False)
        }
        created, present, drift = [], [], []
        for spec in topics:
            name = spec.name(settings.topic_prefix)
            wanted = spec.partitions
            if name in existing:
                present.append(name)
                if existing[name] < wanted:
                    drift.append(f"{name}: {existing[name]} partitions, declared {wanted}")
                continue
            try:
                admin.create_topics([new_topic(spec, settings)], timeout_ms=timeout_ms)
                created.append(name)
            except TopicAlreadyExistsError:
                present.append(name)
    finally:
        admin.close()
    for line in drift:
        log.warning("topic drift", detail=line)
    log.info("topics provisioned", created=created, existing=len(present))
    return ProvisionReport(tuple(created), tuple(present), tuple(drift))
