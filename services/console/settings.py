"""The console's own settings (工作台配置): where it listens, where the four services are, how
long a session and the tokens it mints for its calls live."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    """`SHANGLIANG_CONSOLE_*`; the launcher passes the four services' URLs."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_CONSOLE_", extra="ignore")

    port: int = 8105
    intake_url: str = "http://127.0.0.1:8101"
    meetings_url: str = "http://127.0.0.1:8102"
    supervision_url: str = "http://127.0.0.1:8103"
    projections_url: str = "http://127.0.0.1:8104"
    dashboard_url: str | None = None
    """Where a browser reaches the dashboard; by default the projections URL above."""
    session_ttl_seconds: int = Field(default=8 * 3600, gt=0)
    """A session ends this long after log-in (a working day)."""
    call_token_ttl_seconds: int = Field(default=300, ge=30)
    """The tokens the console mints for its calls to the services are this short-lived."""
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    max_failed_logins: int = Field(default=5, ge=1)
    """After this many wrong passwords in a row, an account is locked for `lockout_seconds`."""
    lockout_seconds: int = Field(default=300, ge=1)
    secure_cookies: bool = False
    """Mark cookies `Secure` (HTTPS only); on behind TLS in production."""

    def service_urls(self) -> dict[str, str]:
        return {
            "intake": self.intake_url,
            "meetings": self.meetings_url,
            "supervision": self.supervision_url,
            "projections": self.projections_url,
        }
