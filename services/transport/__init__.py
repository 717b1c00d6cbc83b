"""The transport sector service: CloudEvents in, durable transport events in Kafka out."""
