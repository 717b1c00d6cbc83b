"""The culture sector service: CloudEvents in, durable culture events in Kafka out."""
