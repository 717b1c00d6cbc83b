"""Pure aggregation logic: no Kafka, no PostgreSQL, no clock. Unit-tested without fixtures."""
