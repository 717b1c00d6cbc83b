"""Settings of the KPI API, from ``KPI_API_*`` environment variables."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.settings import ClockSettings, DatabaseSettings, LogSettings


class KpiApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KPI_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    key_cache_ttl_s: float = Field(default=30.0, ge=0, description="Revocation takes this long.")
    rate_limit_per_s: float = Field(default=50.0, gt=0, description="Requests/s per credential.")
    rate_limit_burst: int = Field(default=200, ge=1)

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    log: LogSettings = Field(default_factory=LogSettings)
