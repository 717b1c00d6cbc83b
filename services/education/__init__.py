"""The education sector service: CloudEvents in, durable education events in Kafka out."""
