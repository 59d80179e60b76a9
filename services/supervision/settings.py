"""Supervision's settings (督办配置): letter numbers, office headings, the escalation ladder."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from services.supervision.domain import Ladder
from shared.offices import office_full_name
from shared.settings import ServiceSettings

LETTER_PREFIXES = {
    "yanbian": "延州政协督",
    "yanji": "延市政协督",
    "tumen": "图市政协督",
    "dunhua": "敦市政协督",
    "hunchun": "珲市政协督",
    "longjing": "龙市政协督",
    "helong": "和市政协督",
    "wangqing": "汪县政协督",
    "antu": "安县政协督",
}
"""The offices' own letter-number prefixes, as in 延州政协督〔2020〕3号."""


class LadderSetting(BaseModel):
    """One office's own escalation ladder; what it leaves out comes from the defaults."""

    reminder_working_days: int | None = Field(default=None, ge=0, le=60)
    escalate_after_working_days: int | None = Field(default=None, ge=0, le=120)


class SupervisionSettings(ServiceSettings):
    """`SHANGLIANG_SUPERVISION_*`: where it listens, and how it numbers and escalates.

    Per-office settings are JSON, e.g. `SHANGLIANG_SUPERVISION_LETTER_PREFIXES=
    '{"yanji": "延吉政协督"}'`; they are added to the defaults, not replacing them.
    """

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_SUPERVISION_", extra="ignore")

    port: int = 8103

    letter_prefixes: dict[str, str] = Field(default_factory=dict)
    office_names: dict[str, str] = Field(default_factory=dict)
    reminder_working_days: int = Field(default=3, ge=0, le=60)
    """提醒: this many working days before the deadline."""
    escalate_after_working_days: int = Field(default=5, ge=0, le=120)
    """提级督办 to the prefecture office after this many working days overdue."""
    ladders: dict[str, LadderSetting] = Field(default_factory=dict)
    referral_working_days: int = Field(default=15, ge=1, le=120)
    """The deadline of a referred issue whose screening gave none."""
    scan_interval_seconds: float = Field(default=60.0, gt=0)
    """How often the scheduler looks for deadlines that passed."""

    def letter_prefix(self, office: str) -> str:
        return self.letter_prefixes.get(office) or LETTER_PREFIXES.get(office) or f"{office}政协督"

    def office_name(self, office: str) -> str:
        """The full name that heads the office's letters, this deployment's if it set one."""
        return office_full_name(office, self.office_names)

    def ladder(self, office: str, prefecture: str) -> Ladder:
        own = self.ladders.get(office, LadderSetting())
        return Ladder(
            reminder_working_days=(
                self.reminder_working_days
                if own.reminder_working_days is None
                else own.reminder_working_days
            ),
            escalate_after_working_days=(
                self.escalate_after_working_days
                if own.escalate_after_working_days is None
                else own.escalate_after_working_days
            ),
            escalate_to=None if office == prefecture else prefecture,
        )
