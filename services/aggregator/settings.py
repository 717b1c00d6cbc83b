"""Settings of the aggregator, from ``AGGREGATOR_*`` environment variables."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.settings import ClockSettings, DatabaseSettings, KafkaSettings, LogSettings


class AggregatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGGREGATOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8105, description="Health and metrics endpoints.")
    group_id: str = Field(default="kpi-aggregator", description="Kafka consumer group.")
    batch_max_records: int = Field(default=20_000, ge=1, description="Records per transaction.")
    batch_max_age_ms: int = Field(default=100, ge=1, description="Longest a record waits before its batch is flushed.")
    fetch_wait_max_ms: int = Field(
        default=100, ge=1, description="Longest the broker holds a fetch open while it has nothing new."
    )
    dedupe_horizon_days: int = Field(
        default=8, ge=7, description="A repeat of (source, id) within this time counts once."
    )
    publish_kpi_updates: bool = Field(
        default=True, description="Publish committed counter changes to the kpi-updates topic."
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    log: LogSettings = Field(default_factory=LogSettings)
