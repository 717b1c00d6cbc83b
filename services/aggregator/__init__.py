"""The KPI aggregator: sector topics in, exactly-once counters and entity state in PostgreSQL."""
