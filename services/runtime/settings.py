"""Settings shared by every service, from environment variables.

Each service defines one ``BaseSettings`` subclass with its own ``env_prefix`` for what is
its own (port, limits) and embeds these shared groups, which keep the unprefixed names the
whole stack uses (``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``).
"""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """Connection to the Kafka cluster (``KAFKA_*``)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="host:port,...")
    topic_prefix: str = Field(default="", description="Prefix of every topic name.")
    replication_factor: int = Field(default=1, ge=1, description="For topics we create.")
    security_protocol: str = Field(default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_SSL…")
    sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-512…")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = Field(default=None, description="CA bundle for SSL.")
    session_timeout_ms: int = Field(default=10_000, ge=1000, description="Consumer group session timeout.")

    def librdkafka(self) -> dict[str, str | int]:
        """Connection settings in librdkafka (confluent-kafka) spelling."""
        conf: dict[str, str | int] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        return conf

    def kafka_python(self) -> dict[str, object]:
        """Connection settings in kafka-python spelling (admin client)."""
        conf: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl_mechanism"] = self.sasl_mechanism
            conf["sasl_plain_username"] = self.sasl_username
            conf["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        if self.ssl_ca_location:
            conf["ssl_cafile"] = self.ssl_ca_location
        return conf


class DatabaseSettings(BaseSettings):
    """Connection to PostgreSQL (``DATABASE_*``). TLS is set in the URL (``sslmode=verify-full``)."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/postgres"),
        description="postgresql://user:password@host:port/db?sslmode=…",
    )
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)


class ClockSettings(BaseSettings):
    """The system's notion of "now" (``CLOCK_*``).

    ``CLOCK_OFFSET_SECONDS`` shifts every service's clock by the same amount. The dev stack
    uses it to run the province in May 2025, the last months of the 2020 district units in
    the reference data; in production it is 0.
    """

    model_config = SettingsConfigDict(env_prefix="CLOCK_", extra="ignore")

    offset_seconds: float = 0.0


class LogSettings(BaseSettings):
    """Logging (``LOG_*``)."""

    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    level: str = "INFO"
    json_output: bool = Field(default=True, alias="LOG_JSON")
