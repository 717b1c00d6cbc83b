"""PostgreSQL adapters of the connectors."""
