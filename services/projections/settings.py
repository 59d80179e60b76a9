"""The read side's settings (查询统计配置): where it listens. Where its views live is
`Settings.projection_store`, common to the service and the CLI's rebuild and check."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ProjectionsSettings(ServiceSettings):
    """`SHANGLIANG_PROJECTIONS_*`: where projections listens."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_PROJECTIONS_", extra="ignore")

    port: int = 8104
