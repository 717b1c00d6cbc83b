"""The small runtime every service shares: settings, logging, metrics, Kafka, PostgreSQL,
credentials, RFC 9457 problems and health endpoints."""
