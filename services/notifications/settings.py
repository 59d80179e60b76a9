"""`SHANGLIANG_NOTIFICATIONS_*`: where the service listens, how it sends and when."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    """The notifications service's own settings (通知服务配置)."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_NOTIFICATIONS_", extra="ignore")

    port: int = 8106
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=0, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    """`tls`: TLS from the first byte (port 465); `starttls`: upgraded after EHLO (587)."""
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = "有事来商量 <noreply@shangliang.local>"
    office_names: dict[str, str] = Field(default_factory=dict)
    """The headings of the offices' letters in their attachments, JSON by office: give it the
    same map as `SHANGLIANG_SUPERVISION_OFFICE_NAMES`, so the e-mailed letter is the one
    supervision's download prints."""
    reminder_working_days: int = Field(default=3, ge=0, le=60)
    """提醒: this many working days before a deadline, and again on the day."""
    quiet_hours: str = ""
    """`22:00-07:00` (China Standard Time): nothing is sent then but the in-app inbox; what
    falls due waits for the end. Empty: no quiet hours."""
    digest_hour: int = Field(default=8, ge=0, le=23)
    """The daily digest (and Monday's weekly one) go out from this hour on."""
    attempts: int = Field(default=6, ge=1, le=100)
    """Tries of one delivery (with exponential backoff) before it goes to the dead letters."""
    backoff_initial_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    send_concurrency: int = Field(default=8, ge=1, le=256)
    poll_seconds: float = Field(default=0.5, gt=0)
    """How often the sender looks for deliveries due."""
    scan_interval_seconds: float = Field(default=60.0, gt=0)
    """How often the scheduler looks for reminders and digests due."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_are_a_window(cls, value: str) -> str:
        from services.notifications.domain import QuietHours

        QuietHours.parse(value)
        return value
