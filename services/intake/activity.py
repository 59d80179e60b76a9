"""The outreach activity (委员进基层活动): one visit session and the members present."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.intake.rules import (
    IssueRuleBroken,
    check_moment,
    cleaned_text,
    field_values,
    remember_command,
)


def _members(members: list[str]) -> list[str]:
    cleaned = [m.strip() for m in members]
    if not cleaned or any(not m for m in cleaned):
        raise IssueRuleBroken("members", "参加委员不能为空 / name at least one member, none blank")
    repeated = sorted({m for m in cleaned if cleaned.count(m) > 1})
    if repeated:
        raise IssueRuleBroken(
            "members", f"委员重复 / a member is named twice: {', '.join(repeated)}"
        )
    return cleaned


class OutreachActivity(Aggregate):
    """委员进基层活动: one outreach session (一期) with the members present (人次)."""

    id: UUID

    @event("Recorded")
    def __init__(
        self,
        office: str,
        held_at: datetime,
        members: list[str],
        community: str | None = None,
        liaison_station: str | None = None,
        activity_group: str | None = None,
        note: str = "",
    ) -> None:
        self.office = office
        self.held_at = held_at
        self.members = members
        # A retried or re-imported record is compared with what was first recorded: a later
        # correction must not turn the office's own retry into a conflict.
        self.recorded_members = list(members)
        self.community = community
        self.liaison_station = liaison_station
        self.activity_group = activity_group
        self.note = note
        self.commands: dict[str, str] = {}

    @classmethod
    def record(
        cls,
        activity_id: UUID,
        office: str,
        held_at: datetime,
        members: list[str],
        now: datetime,
        community: str | None = None,
        liaison_station: str | None = None,
        activity_group: str | None = None,
        note: str | None = None,
    ) -> OutreachActivity:
        """Record an activity, checking what the record must satisfy."""
        check_moment("held_at", held_at, now)
        community = cleaned_text("community", community, "社区", required=False)
        liaison_station = cleaned_text("liaison_station", liaison_station, "联络站", required=False)
        if community is None and liaison_station is None:
            raise IssueRuleBroken(
                "community", "需要社区或联络站 / name the community or the liaison station"
            )
        return cls(
            id=activity_id,
            office=office,
            held_at=held_at,
            members=_members(members),
            community=community,
            liaison_station=liaison_station,
            activity_group=cleaned_text(
                "activity_group", activity_group, "活动小组", required=False
            ),
            note=(note or "").strip(),
        )

    @property
    def participations(self) -> int:
        """人次: each member present counts once."""
        return len(self.members)

    def same_record(self, other: OutreachActivity) -> bool:
        """Whether a retried record asks for exactly what this activity already records."""
        return field_values(self, _ACTIVITY_FIELDS) == field_values(other, _ACTIVITY_FIELDS)

    def correct(
        self,
        members: list[str],
        reason: str,
        corrected_at: datetime,
        now: datetime,
        command: tuple[str, str] | None = None,
    ) -> None:
        """更正参加委员: the full new list replaces the old one; the change stays in history."""
        cleaned = _members(members)
        why = cleaned_text("reason", reason, "更正原因")
        check_moment("corrected_at", corrected_at, now, after=self.held_at)
        if cleaned == self.members:
            raise IssueRuleBroken(
                "members", "名单与现有相同 / the list is the same as the current one"
            )
        self._corrected(self.office, cleaned, why, corrected_at, command)

    @event("Corrected")
    def _corrected(
        self,
        office: str,
        members: list[str],
        reason: str,
        corrected_at: datetime,
        command: tuple[str, str] | None,
    ) -> None:
        self.members = members
        remember_command(self, command)


_ACTIVITY_FIELDS = (
    "office",
    "held_at",
    "recorded_members",
    "community",
    "liaison_station",
    "activity_group",
    "note",
)
