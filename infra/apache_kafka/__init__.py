"""Real Apache Kafka (KRaft) for tests and local runs: jars from Maven Central, no Docker."""
