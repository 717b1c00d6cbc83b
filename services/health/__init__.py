"""The health sector service: CloudEvents in, durable health events in Kafka out."""
