"""Intake's request bodies and answers (请求与应答): what the HTTP API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field

from services.intake.activity import OutreachActivity
from services.intake.domain import Decision, Issue, Source, Status
from shared.web import ChinaTime as Moment
from shared.web import IsoDate, RequestBody

Name = Annotated[str, Field(min_length=1, max_length=100)]


class _Body(RequestBody):
    pass


class ActivityRecord(_Body):
    """A new outreach activity (委员进基层活动) as a clerk records it."""

    office: str = Field(min_length=1, max_length=40, examples=["yanji"])
    held_at: Moment = Field(examples=["2020-06-04T14:30:00+08:00"])
    community: str | None = Field(default=None, max_length=100, examples=["进学社区"])
    liaison_station: str | None = Field(default=None, max_length=100)
    activity_group: str | None = Field(default=None, max_length=100)
    members: list[Name] = Field(min_length=1, max_length=500, examples=[["张三", "李四"]])
    note: str | None = Field(default=None, max_length=5000)


class ActivityCorrection(_Body):
    """The full new list of members present, and why it changed."""

    members: list[Name] = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=1000)
    corrected_at: Moment | None = None


class IssueSubmission(_Body):
    """A new issue as a clerk records it."""

    office: str = Field(min_length=1, max_length=40, examples=["yanji"])
    title: str = Field(min_length=1, max_length=200, examples=["小区路灯损坏"])
    description: str = Field(min_length=1, max_length=5000)
    category: str = Field(min_length=1, max_length=40, examples=["城市管理"])
    submitted_at: Moment = Field(examples=["2020-06-04T15:30:00+08:00"])
    community: str | None = Field(default=None, max_length=100)
    liaison_station: str | None = Field(default=None, max_length=100)
    source: Source | None = None
    activity_id: UUID | None = None
    recorded_by: str | None = Field(default=None, max_length=100)
    key_problem: bool = False
    reporter_name: str | None = Field(default=None, max_length=100)
    reporter_phone: str | None = Field(default=None, max_length=40)


class Screening(_Body):
    """The leading group's decision (筛选议题) and what that decision needs."""

    decision: Decision
    screened_at: Moment | None = None
    report_title: str | None = Field(default=None, max_length=200)
    department: str | None = Field(default=None, max_length=100)
    deadline: IsoDate | None = None
    answer: str | None = Field(default=None, max_length=5000)
    duplicate_of: UUID | None = None
    reason: str | None = Field(default=None, max_length=2000)


class Closing(_Body):
    closed_at: Moment | None = None


class Reopening(_Body):
    reason: str = Field(min_length=1, max_length=2000)
    reopened_at: Moment | None = None


class ActivityView(BaseModel):
    id: UUID
    office: str
    held_at: datetime
    community: str | None
    liaison_station: str | None
    activity_group: str | None
    members: list[str]
    participations: int
    note: str
    recorded_at: datetime
    version: int

    @classmethod
    def of(cls, activity: OutreachActivity) -> ActivityView:
        return cls(
            id=activity.id,
            office=activity.office,
            held_at=activity.held_at,
            community=activity.community,
            liaison_station=activity.liaison_station,
            activity_group=activity.activity_group,
            members=activity.members,
            participations=activity.participations,
            note=activity.note,
            recorded_at=activity.created_on,
            version=activity.version,
        )


class ActivityDetail(ActivityView):
    history: list[dict[str, Any]]


class IssueView(BaseModel):
    id: UUID
    office: str
    title: str
    description: str
    category: str
    submitted_at: datetime
    community: str | None = None
    liaison_station: str | None = None
    source: str | None = None
    activity_id: UUID | None = None
    recorded_by: str | None = None
    key_problem: bool = False
    reporter_name: str | None = None
    """Only for a clerk or leader of the issue's own office."""
    reporter_phone: str | None = None
    status: Status = "submitted"
    screening: dict[str, Any] | None = None
    duplicate_of: UUID | None = None
    duplicates: list[UUID] = []
    resolved_at: datetime | None = None
    resolved_via: str | None = None
    closed_at: datetime | None = None
    recorded_at: datetime
    version: int

    @classmethod
    def of(cls, issue: Issue, show_reporter: bool = False) -> IssueView:
        return cls(
            id=issue.id,
            office=issue.office,
            title=issue.title,
            description=issue.description,
            category=issue.category,
            submitted_at=issue.submitted_at,
            community=issue.community,
            liaison_station=issue.liaison_station,
            source=issue.source,
            activity_id=issue.activity_id,
            recorded_by=issue.recorded_by,
            key_problem=issue.key_problem,
            reporter_name=issue.reporter_name if show_reporter else None,
            reporter_phone=issue.reporter_phone if show_reporter else None,
            status=issue.status,  # type: ignore[arg-type]
            screening=issue.screening,
            duplicate_of=issue.duplicate_of,
            duplicates=issue.duplicates,
            resolved_at=issue.resolved_at,
            resolved_via=issue.resolved_via,
            closed_at=issue.closed_at,
            recorded_at=issue.created_on,
            version=issue.version,
        )


class IssueDetail(IssueView):
    history: list[dict[str, Any]]


class IssuePage(BaseModel):
    items: list[IssueView]
    total: int
    page: int
    page_size: int


class ActivityPage(BaseModel):
    items: list[ActivityView]
    total: int
    page: int
    page_size: int


class RowProblem(BaseModel):
    row: int
    column: str
    reason: str


class ImportAnswer(BaseModel):
    stored: int
    unchanged: int
    errors: list[RowProblem]
