"""Settings of the health service, from ``HEALTH_*`` environment variables."""

from pydantic_settings import SettingsConfigDict

from services.ingest.settings import IngestSettings


class HealthSettings(IngestSettings):
    model_config = SettingsConfigDict(env_prefix="HEALTH_", extra="ignore")

    port: int = 8102
