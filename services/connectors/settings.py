"""Settings of the connector service, from ``CONNECTORS_*`` environment variables."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.settings import DatabaseSettings, KafkaSettings, LogSettings


class ConnectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONNECTORS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8107
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Request body limit (edXML carries PDFs, claims many tables)."
    )
    max_records: int = Field(default=1000, ge=1, description="Dossiers, progress steps or claim records per request.")
    max_attachment_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="One decoded attachment or table.")
    delivery_timeout_ms: int = Field(default=8000, ge=500, description="How long to wait for the broker.")
    key_cache_ttl_s: float = Field(default=30.0, ge=0, description="Revocation takes this long.")
    rate_limit_per_s: float = Field(default=200.0, gt=0, description="Requests/s per credential.")
    rate_limit_burst: int = Field(default=400, ge=1)
    mappings_refresh_s: float = Field(default=30.0, gt=0, description="How often mappings are re-read.")

    dvcqg_system_id: str = Field(
        default="mot-cua-thanh-hoa",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Names the one-stop system in event sources when the payload does not (plain arrays).",
    )
    dvcqg_default_channel: Literal["counter", "online", "post"] = Field(
        default="counter",
        description="Channel of a dossier without KenhThucHien (OpenCPS payloads); never taken from HinhThuc.",
    )
    dvcqg_success_code: str = Field(default="0", description="error_code of a success (some OpenCPS builds expect 00).")
    dvcqg_exists_code: str = Field(default="3", description="error_code of 'already exists' on the add URL (3 or -3).")
    edxml_system_id: str = Field(default="truc-lien-thong", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    signature_rule_path: str | None = Field(default=None, description="TOML signer rule; default: the packaged one.")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log: LogSettings = Field(default_factory=LogSettings)
