"""Settings of the culture service, from ``CULTURE_*`` environment variables."""

from pydantic_settings import SettingsConfigDict

from services.ingest.settings import IngestSettings


class CultureSettings(IngestSettings):
    model_config = SettingsConfigDict(env_prefix="CULTURE_", extra="ignore")

    port: int = 8104
