"""Settings of a sector service. Each sector subclasses with its own ``env_prefix``."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.settings import DatabaseSettings, KafkaSettings, LogSettings


class IngestSettings(BaseSettings):
    """What a sector service reads from its environment (prefix per sector, e.g. ``HEALTH_``)."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8100
    max_batch_events: int = Field(default=1000, ge=1, description="Events per batched request.")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="Request body limit.")
    delivery_timeout_ms: int = Field(
        default=8000, ge=500, description="How long to wait for the broker before answering 503."
    )
    key_cache_ttl_s: float = Field(default=30.0, ge=0, description="Revocation takes this long.")
    rate_limit_per_s: float = Field(default=2000.0, gt=0, description="Requests/s per credential.")
    rate_limit_burst: int = Field(default=4000, ge=1)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log: LogSettings = Field(default_factory=LogSettings)
