"""Settings of the transport service, from ``TRANSPORT_*`` environment variables."""

from pydantic_settings import SettingsConfigDict

from services.ingest.settings import IngestSettings


class TransportSettings(IngestSettings):
    model_config = SettingsConfigDict(env_prefix="TRANSPORT_", extra="ignore")

    port: int = 8103
