"""Settings of the education service, from ``EDUCATION_*`` environment variables."""

from pydantic_settings import SettingsConfigDict

from services.ingest.settings import IngestSettings


class EducationSettings(IngestSettings):
    model_config = SettingsConfigDict(env_prefix="EDUCATION_", extra="ignore")

    port: int = 8101
