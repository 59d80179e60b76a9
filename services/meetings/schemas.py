"""What the meetings API answers and takes (请求与应答): pydantic models, no rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from services.meetings.domain import Meeting
from shared.web import ChinaTime as Moment
from shared.web import IsoDate, RequestBody

Text = Annotated[str, Field(min_length=1, max_length=200)]


class Request(RequestBody):
    pass


class PersonRegistration(Request):
    person_id: str | None = Field(default=None, min_length=1, max_length=80)
    name: Text
    kind: Literal["member", "expert", "department_head"]
    department: str | None = Field(default=None, min_length=1, max_length=80)


class VenueRegistration(Request):
    name: Text
    address: str | None = Field(default=None, max_length=300)


class DepartmentRegistration(Request):
    name: Text


class MeetingPlan(Request):
    office: str = Field(min_length=1, max_length=40, examples=["yanji"])
    joint_offices: list[str] = Field(default_factory=list, max_length=9)
    kind: Literal["thematic", "onsite", "written"]
    title: Text
    theme: str = Field(min_length=1, max_length=2000)
    starts_at: Moment = Field(examples=["2020-07-16T14:30:00+08:00"])
    ends_at: Moment
    venue: str | None = Field(default=None, min_length=1, max_length=200)
    submission_deadline: Moment | None = None
    planned_at: Moment | None = None


class TopicAddition(Request):
    issue_id: UUID
    added_at: Moment | None = None


class Invitation(Request):
    person_id: str = Field(min_length=1, max_length=80)
    role: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="member / expert / department_head / host …; the person's kind if absent",
    )


class Reply(Request):
    accepted: bool


class Holding(Request):
    held_at: Moment | None = None
    attendance: list[str] = Field(min_length=1, max_length=500)


class Opinion(Request):
    person_id: str = Field(min_length=1, max_length=80)
    opinion: str = Field(min_length=1, max_length=10000)
    received_at: Moment | None = None


class Closing(Request):
    closed_at: Moment | None = None


class OutcomeProposal(Request):
    issue_ids: list[UUID] = Field(min_length=1)
    recommendation: str = Field(min_length=1, max_length=10000)
    department: str = Field(min_length=1, max_length=80)
    deadline: IsoDate


class Conclusion(Request):
    concluded_at: Moment | None = None
    outcomes: list[OutcomeProposal] = Field(min_length=1, max_length=100)


class Cancellation(Request):
    reason: str = Field(min_length=1, max_length=2000)
    cancelled_at: Moment | None = None


class Postponement(Request):
    starts_at: Moment
    ends_at: Moment
    submission_deadline: Moment | None = None
    reason: str = Field(min_length=1, max_length=2000)
    postponed_at: Moment | None = None


class Page(BaseModel):
    items: list[Any]
    total: int
    page: int
    page_size: int


class MeetingView(BaseModel):
    """A meeting with its agenda, participants, what happened and its history."""

    id: UUID
    office: str
    offices: list[str]
    joint_offices: list[str]
    kind: str
    title: str
    theme: str
    status: str
    starts_at: datetime
    ends_at: datetime
    venue: str | None
    submission_deadline: datetime | None
    planned_at: datetime
    topics: list[dict[str, Any]]
    invitations: list[dict[str, Any]]
    held_at: datetime | None
    attendance: list[dict[str, Any]]
    opinions: list[dict[str, Any]]
    concluded_at: datetime | None
    outcomes: list[dict[str, Any]]
    cancelled_at: datetime | None
    cancel_reason: str | None
    postponements: list[dict[str, Any]]
    sequence: int
    version: int
    history: list[dict[str, Any]] | None = None
    """Only on `GET /meetings/{id}`: every event with when it was recorded."""

    @classmethod
    def of(cls, meeting: Meeting, history: list[dict[str, Any]] | None = None) -> MeetingView:
        return cls(
            history=history,
            id=meeting.id,
            office=meeting.office,
            offices=meeting.offices,
            joint_offices=meeting.offices[1:],
            kind=meeting.kind,
            title=meeting.title,
            theme=meeting.theme,
            status=meeting.status,
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            venue=meeting.venue,
            submission_deadline=meeting.submission_deadline,
            planned_at=meeting.planned_at,
            topics=list(meeting.topics.values()),
            invitations=list(meeting.invitations.values()),
            held_at=meeting.held_at,
            attendance=meeting.attendance,
            opinions=meeting.opinions,
            concluded_at=meeting.concluded_at,
            outcomes=meeting.outcomes,
            cancelled_at=meeting.cancelled_at,
            cancel_reason=meeting.cancel_reason,
            postponements=meeting.postponements,
            sequence=meeting.sequence,
            version=meeting.version,
        )
