"""Process settings from the environment (and a `.env` file), one class per concern."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wangjian.campaign.loader import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Placeholder secrets shipped for development; refused when WANGJIAN_ENV=production.
DEV_SECRET = "dev-only-change-me"


class PlaceholderSecrets(ConfigError, ValueError):
    """A production process given the development placeholders for its secrets."""


def _env_config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore")


class SmtpSettings(BaseSettings):
    """Where mail goes; without a host, mail is written to the local mailbox folder."""

    model_config = _env_config("WANGJIAN_SMTP_")

    host: str | None = None
    port: int = 25
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    tls: bool = False
    # A CA bundle for servers whose certificate a private (e.g. government) CA issued.
    ca_file: Path | None = None
    timeout_seconds: float = 30.0
    pool_size: int = Field(default=4, ge=1, le=32)
    max_attempts: int = Field(default=8, ge=1)
    # Transient failures wait `retry_initial_seconds`, doubling per attempt up to the cap, plus
    # jitter so that many messages deferred together do not all come back at the same instant.
    retry_initial_seconds: float = Field(default=60.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    # A Prefect global concurrency limit each send batch holds a slot of, so that all the
    # workers together keep at most that many batches talking to the relay (scripts/stack.sh
    # creates `wangjian-smtp`). Unset: no limit is asked for.
    concurrency_limit: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpSettings:
        if self.tls and self.starttls:
            raise ValueError("WANGJIAN_SMTP_TLS and WANGJIAN_SMTP_STARTTLS exclude each other")
        return self


class PortalSettings(BaseSettings):
    """The agency portal: link signing and the office's own sign-in."""

    model_config = _env_config("WANGJIAN_PORTAL_")

    base_url: str = "http://127.0.0.1:8765"
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    token_days: int = Field(default=45, ge=1)
    office_user: str = "office"
    office_password: SecretStr = SecretStr(DEV_SECRET)
    upload_dir: Path = Path("var/uploads")
    max_upload_mb: int = Field(default=20, ge=1)


class Settings(BaseSettings):
    """Everything a Wangjian process needs to know about its surroundings."""

    model_config = _env_config("WANGJIAN_")

    env: str = "development"
    database_url: str = "sqlite:///wangjian.db"
    config_dir: Path = Path("config")
    mail_from: str | None = None
    mailbox_dir: Path = Path("var/mailbox")
    # Referrals to one agency from one dispatch go out as one digest of at most this many.
    mail_digest_cap: int = Field(default=50, ge=1)
    # Messages claimed and sent per task run (one Prefect task per batch).
    mail_batch_size: int = Field(default=200, ge=1)
    # A lead file of at least this many rows has its chunks written by a dispatcher process of
    # its own while the next chunk is checked (wangjian.ledger.dispatcher); 0: every file.
    dispatch_process_rows: int = Field(default=100_000, ge=0)
    # The office's own templates, looked up before the shipped `templates/`.
    templates_dir: Path | None = None
    # Read from WANGJIAN_SMTP_* by default; a test or the demo may pass its own.
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    portal: PortalSettings = Field(default_factory=PortalSettings)
    reports_dir: Path = Path("var/reports")
    rejects_dir: Path = Path("var/rejects")
    prefect_home: Path = Path("var/prefect")
    locale: str = "zh"

    @model_validator(mode="after")
    def _resolve_config_dir(self) -> Settings:
        # `config/` means the project's own folder when the working directory has none.
        if not self.config_dir.is_absolute() and not self.config_dir.exists():
            candidate = PROJECT_ROOT / self.config_dir
            if candidate.exists():
                self.config_dir = candidate
        return self

    def check_secrets(self) -> None:
        """Refuse the development placeholders in production (every process checks: the
        workers sign the portal links that notices carry with the portal's secret key)."""
        if self.env != "production":
            return
        placeholders = [
            name
            for name, value in (
                ("WANGJIAN_PORTAL_SECRET_KEY", self.portal.secret_key),
                ("WANGJIAN_PORTAL_OFFICE_PASSWORD", self.portal.office_password),
            )
            if value.get_secret_value() == DEV_SECRET
        ]
        if placeholders:
            raise PlaceholderSecrets(
                "environment",
                ", ".join(placeholders),
                "the development placeholder is refused when WANGJIAN_ENV=production "
                "(set it, or keep it in a Prefect Secret block: docs/operations.md)",
            )


def load_settings(**overrides: object) -> Settings:
    """Read the settings once at start-up (overrides are for tests and the demo)."""
    return Settings(**overrides)  # type: ignore[arg-type]


def disable_prefect_analytics() -> None:
    """Prefect sends telemetry by default; a government office's system must not."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
