"""Configuration from the environment (配置). The embedded default needs no variable at all."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.files import private_dir, private_sqlite

DEV_SIGNING_KEY = "shangliang-embedded-development-key-change-me"
"""The placeholder key of the embedded default; production mode refuses it."""

COUNTY_OFFICES = (
    "yanji",
    "tumen",
    "dunhua",
    "hunchun",
    "longjing",
    "helong",
    "wangqing",
    "antu",
)


class NatsSettings(BaseSettings):
    """How to reach NATS and what the streams look like: all that `shangliang nats-setup`
    needs (no signing key, no database)."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_", extra="ignore")

    mode: Literal["embedded", "production"] = "embedded"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    """This process's NATS user (deploy/nats/users.conf); production mode requires one.
    `shangliang up` gives each service its own; `shangliang nats-setup` runs as `admin`."""
    nats_password: SecretStr | None = None
    stream_replicas: int = Field(default=1, ge=1, le=5)
    duplicate_window_seconds: float = Field(default=120.0, gt=0)


class Settings(NatsSettings):
    """Settings every service shares, read from `SHANGLIANG_*` variables."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_", extra="ignore")

    data_dir: Path = Path("data")
    embedded_nats_port: int = Field(default=0, ge=0, le=65535)
    """Port of the nats-server that `shangliang up` starts; 0 picks a free one."""
    event_store: Literal["sqlite", "postgres"] = "sqlite"
    """Where event stores live: one SQLite file per service, or PostgreSQL to scale out."""
    projection_store: Literal["sqlite", "postgres"] | None = None
    """Where the read side keeps its views (and their tracking): by default where the event
    stores are, so `SHANGLIANG_EVENT_STORE=postgres` alone puts everything in PostgreSQL."""
    postgres_host: str = "127.0.0.1"
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_user: str = "postgres"
    postgres_password: str = ""
    postgres_dbname: str = "shangliang"
    postgres_schema: str = "public"
    postgres_pool_size: int = Field(default=5, ge=1)

    signing_keys: list[str] = Field(default_factory=lambda: [DEV_SIGNING_KEY])
    """HS256 keys; the first signs, all verify (so a key can be rotated)."""
    token_issuer: str = "shangliang"
    token_audience: str = "shangliang"
    token_ttl_seconds: int = Field(default=8 * 3600, gt=0)
    calendar_token_ttl_seconds: int = Field(default=366 * 24 * 3600, gt=0)
    """A calendar subscription's token (日历订阅令牌): a year, since a calendar app keeps
    polling the URL it was given; it reads the calendar feeds and nothing else."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """A larger request body is refused with 413 (a spreadsheet import: `max_upload_bytes`)."""
    max_upload_bytes: int = Field(default=21 * 1024 * 1024, ge=1024)
    """The body of a spreadsheet import: intake's 20 MB file and its multipart wrapping."""
    rate_limit_per_second: float = Field(default=50_000.0, gt=0)
    """Requests a token may send a second to one replica, after a burst (429 beyond). The
    default is above what one replica serves (the statistics bench: ~14,000 a second with one
    token), so that nothing the project runs meets it; production sets its own (docs/API.md)."""
    rate_limit_burst: int = Field(default=100_000, ge=1)

    prefecture_office: str = "yanbian"
    county_offices: list[str] = Field(default_factory=lambda: list(COUNTY_OFFICES))

    @property
    def offices(self) -> list[str]:
        return [self.prefecture_office, *self.county_offices]

    @model_validator(mode="after")
    def _refuse_placeholder_key_in_production(self) -> Settings:
        if self.mode == "production" and (
            DEV_SIGNING_KEY in self.signing_keys or any(len(k) < 32 for k in self.signing_keys)
        ):
            raise ValueError(
                "生产模式需要设置 SHANGLIANG_SIGNING_KEYS（至少 32 个字符，且不是示例密钥）/ "
                "production mode needs real SHANGLIANG_SIGNING_KEYS (32+ characters, not the "
                "placeholder)"
            )
        return self

    def data_file(self, name: str) -> Path:
        """A file in the data folder, which is created on first use, owner-only (0700)."""
        return private_dir(self.data_dir) / name

    @property
    def projections_on_postgres(self) -> bool:
        return (self.projection_store or self.event_store) == "postgres"

    def event_store_env(self, application: str) -> dict[str, str]:
        """The eventsourcing environment for one application: one SQLite file each, or
        PostgreSQL tables prefixed with the application's name."""
        if self.event_store == "postgres":
            return self.postgres_env()
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": private_sqlite(str(self.data_file(f"{application}.sqlite"))),
            "SQLITE_LOCK_TIMEOUT": "10",
        }

    def postgres_env(self) -> dict[str, str]:
        """The eventsourcing environment of the configured PostgreSQL schema."""
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": self.postgres_host,
            "POSTGRES_PORT": str(self.postgres_port),
            "POSTGRES_USER": self.postgres_user,
            "POSTGRES_PASSWORD": self.postgres_password,
            "POSTGRES_DBNAME": self.postgres_dbname,
            "POSTGRES_SCHEMA": self.postgres_schema,
            "POSTGRES_POOL_SIZE": str(self.postgres_pool_size),
            "POSTGRES_LOCK_TIMEOUT": "10",
        }


class ServiceSettings(BaseSettings):
    """Where one service listens; each service's `settings.py` subclasses it with its own
    prefix, default port and whatever else only that service reads."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=0, le=65535)


# Offline county offices (县政协离线运行): a county office may run its own nats-server as a
# leaf node of the prefecture's cluster, with its own intake service; the streams this takes
# are in shared/streams.py (`county_streams`, `intake_streams`).

HUB_DOMAIN = "hub"
"""The prefecture's JetStream domain, as the hub node's configuration names it."""


class CountyServer(BaseSettings):
    """`SHANGLIANG_COUNTY_OFFICE`, e.g. `hunchun`: set for the set-up (`shangliang
    nats-setup`) of a county office's own nats-server, which then creates that server's
    streams instead of the prefecture's; `SHANGLIANG_HUB_DOMAIN` (`hub`) is the prefecture's
    JetStream domain."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_", extra="ignore")

    county_office: str | None = None
    hub_domain: str = HUB_DOMAIN


class LeafOffices(BaseSettings):
    """`SHANGLIANG_LEAF_OFFICES`, e.g. `["hunchun", "tumen"]`: the county offices that run
    their own leaf node. Read on its own, so that a module can know its upstream streams
    without the settings that only a running service must have."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_", extra="ignore")

    leaf_offices: list[str] = Field(default_factory=list)
