"""Settings of the alerts service, from ``ALERTS_*`` environment variables."""

import tempfile
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.alerts.rules import HOLIDAYS_PATH, RULES_PATH
from services.runtime.settings import ClockSettings, DatabaseSettings, KafkaSettings, LogSettings


class AlertsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALERTS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8106, description="Health and metrics endpoints.")
    app_id: str = Field(default="smartcity-alerts", description="Consumer group and table topic prefix.")
    data_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "smartcity-alerts",
        description="faust's local folder (tables are in memory and rebuilt from Kafka: nothing to keep).",
    )
    rules_file: Path = Field(default=RULES_PATH, description="Silence rules and threshold tuning (TOML).")
    holidays_file: Path = Field(default=HOLIDAYS_PATH, description="Holidays and office hours (TOML).")
    silence_scale: float = Field(default=1.0, gt=0, description="Multiplies every silence period (dev: < 1).")
    silence_periods: dict[str, float] = Field(
        default_factory=dict, description='Per-family silence periods in working hours, JSON {"family": hours}.'
    )
    silence_check_s: float = Field(default=30.0, gt=0, description="Wall seconds between silence checks.")
    sweep_s: float = Field(default=300.0, gt=0, description="Wall seconds between judgements of every KPI and unit.")
    clock_file: Path | None = Field(
        default=None, description="Tests: a file holding the current time (ISO 8601); read on every use."
    )
    webhooks: str = Field(default="", description="Comma-separated webhook URLs notified of opened/closed alerts.")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key of X-Smartcity-Signature.")
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_backoff_s: float = Field(default=2.0, gt=0, description="First retry delay; doubles per attempt.")
    webhook_backoff_max_s: float = Field(default=600.0, gt=0, description="Longest delay between attempts.")
    delivery_poll_s: float = Field(default=5.0, gt=0, description="How often undelivered notifications are retried.")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    def webhook_urls(self) -> list[str]:
        return [u.strip() for u in self.webhooks.split(",") if u.strip()]
