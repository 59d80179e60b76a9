"""What a meeting takes and books (议题与日程): pure aggregates, no I/O.

- `AcceptedTopic` — meetings' own record that intake screened an issue as a topic, and which
  open meeting has it on its agenda: two meetings taking one issue conflict on its version.
- `Schedule` — the bookings of one person or one venue: two overlapping bookings conflict on
  its version, so two concurrent requests cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.meetings.rules import MeetingConflict, stable_id
from shared.clock import CHINA


def _overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def _window(starts_at: datetime, ends_at: datetime) -> str:
    start, end = starts_at.astimezone(CHINA), ends_at.astimezone(CHINA)
    return (
        f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"
        if start.date() == end.date()
        else (f"{start:%Y-%m-%d %H:%M}–{end:%Y-%m-%d %H:%M}")
    )


class AcceptedTopic(Aggregate):
    """协商议题: an issue intake screened as `topic`, as meetings learned it from intake."""

    id: UUID

    @staticmethod
    def id_for(issue_id: UUID) -> UUID:
        return stable_id("topic", issue_id)

    @event("Accepted")
    def __init__(
        self,
        issue_id: UUID,
        office: str,
        title: str,
        category: str,
        key_problem: bool,
        screened_at: datetime,
    ) -> None:
        self.issue_id = issue_id
        self.office = office
        self.title = title
        self.category = category
        self.key_problem = key_problem
        self.screened_at = screened_at
        self.accepted = True
        self.meeting_id: UUID | None = None

    @classmethod
    def accept(
        cls,
        issue_id: UUID,
        office: str,
        title: str,
        category: str,
        key_problem: bool,
        screened_at: datetime,
    ) -> AcceptedTopic:
        return cls(
            id=cls.id_for(issue_id),
            issue_id=issue_id,
            office=office,
            title=title,
            category=category,
            key_problem=key_problem,
            screened_at=screened_at,
        )

    @event("AcceptedAgain")
    def accept_again(
        self, title: str, category: str, key_problem: bool, screened_at: datetime
    ) -> None:
        """Screened as a topic once more (e.g. after it was reopened)."""
        self.title = title
        self.category = category
        self.key_problem = key_problem
        self.screened_at = screened_at
        self.accepted = True

    @event("Withdrawn")
    def withdraw(self, reason: str, at: datetime) -> None:
        """Intake no longer holds it a topic: screened otherwise, or reopened for screening."""
        self.accepted = False

    def take(self, meeting_id: UUID, meeting_title: str) -> None:
        if not self.accepted:
            raise MeetingConflict(
                f"问题 {self.issue_id} 目前不是协商议题（已重新筛选或重新打开）/ intake no longer "
                "holds this issue a topic (screened again or reopened)"
            )
        if self.meeting_id is not None and self.meeting_id != meeting_id:
            raise MeetingConflict(
                f"问题 {self.issue_id} 已列入另一个协商会议《{self.meeting_title}》"
                f"（{self.meeting_id}）/ the issue is on the agenda of another open meeting: "
                f"{self.meeting_title!r} ({self.meeting_id})"
            )
        if self.meeting_id is None:
            self._taken(meeting_id, meeting_title)

    @event("Taken")
    def _taken(self, meeting_id: UUID, meeting_title: str) -> None:
        self.meeting_id = meeting_id
        self.meeting_title = meeting_title

    def release(self, meeting_id: UUID) -> None:
        if self.meeting_id == meeting_id:
            self._released(meeting_id)

    @event("Released")
    def _released(self, meeting_id: UUID) -> None:
        self.meeting_id = None


class Schedule(Aggregate):
    """日程: the bookings of one person (参会人员) or one venue (会场) of an office.

    Booking is checked and stored on this one aggregate, so two requests that book the same
    person or venue at once both load the same version and the second save fails in the event
    store (the application then reloads and decides again): no lock, and it holds across
    processes and replicas as well.
    """

    id: UUID

    @staticmethod
    def id_for(kind: str, office: str, key: str) -> UUID:
        return stable_id("schedule", kind, office, key)

    @event("Opened")
    def __init__(self, kind: str, office: str, key: str) -> None:
        self.kind = kind
        self.office = office
        self.key = key
        self.bookings: dict[str, dict[str, Any]] = {}

    @classmethod
    def open(cls, kind: str, office: str, key: str) -> Schedule:
        return cls(id=cls.id_for(kind, office, key), kind=kind, office=office, key=key)

    def book(
        self, meeting_id: UUID, title: str, starts_at: datetime, ends_at: datetime, label: str
    ) -> None:
        for other_id, other in self.bookings.items():
            if other_id != str(meeting_id) and _overlaps(
                starts_at, ends_at, other["starts_at"], other["ends_at"]
            ):
                raise MeetingConflict(
                    f"{label}在 {_window(other['starts_at'], other['ends_at'])} 已安排"
                    f"协商会议《{other['title']}》（{other_id}）/ {label} is already booked for "
                    f"the meeting {other['title']!r} ({other_id}) at an overlapping time"
                )
        current = self.bookings.get(str(meeting_id))
        if current != {"title": title, "starts_at": starts_at, "ends_at": ends_at}:
            self._booked(str(meeting_id), title, starts_at, ends_at)

    @event("Booked")
    def _booked(self, meeting_id: str, title: str, starts_at: datetime, ends_at: datetime) -> None:
        self.bookings[meeting_id] = {"title": title, "starts_at": starts_at, "ends_at": ends_at}

    def release(self, meeting_id: UUID) -> None:
        if str(meeting_id) in self.bookings:
            self._freed(str(meeting_id))

    @event("Freed")
    def _freed(self, meeting_id: str) -> None:
        del self.bookings[meeting_id]
