"""Meetings' settings (协商会议配置): where the service listens; nothing else is its own."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class MeetingsSettings(ServiceSettings):
    """`SHANGLIANG_MEETINGS_*`: where meetings listens."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_MEETINGS_", extra="ignore")

    port: int = 8102
