"""Intake's request bodies and answers (请求与应答): what the HTTP API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from services.intake.activity import OutreachActivity
from services.intake.domain import STATUS_NAMES, Decision, Issue, Satisfaction, Source, Status
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
    key_problem: bool | None = None
    """重点难点问题: flag (or unflag) the issue as a key problem; absent keeps its flag."""


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
    location: dict[str, Any] | None = None
    media_url: str | None = None
    tracking_code: str | None = None
    """查询码 for the resident; only for a clerk or leader of the issue's own office."""
    callbacks: list[dict[str, Any]] = []
    recorded_at: datetime
    version: int

    @classmethod
    def of(
        cls, issue: Issue, show_reporter: bool = False, tracking_code: str | None = None
    ) -> IssueView:
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
            location=issue.location,
            media_url=issue.media_url,
            tracking_code=tracking_code if show_reporter else None,
            callbacks=issue.callbacks,
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


# --- Open311 and the public lookup ------------------------------------------------------------

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class Open311Submission(RequestBody):
    """GeoReport v2 POST service request, the spec's fields (form-encoded). `email`,
    `device_id` and `account_id` are accepted and not kept; `attribute[code]` fields are
    read beside these."""

    model_config = ConfigDict(extra="allow")

    api_key: str = Field(min_length=1, max_length=200)
    jurisdiction_id: str | None = Field(default=None, min_length=1, max_length=40)
    service_code: str = Field(min_length=1, max_length=40, examples=["城市管理"])
    lat: Latitude | None = None
    long: Longitude | None = None
    address_string: str | None = Field(default=None, min_length=1, max_length=300)
    address_id: str | None = Field(default=None, min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=200)
    device_id: str | None = Field(default=None, max_length=200)
    account_id: str | None = Field(default=None, max_length=200)
    first_name: str | None = Field(default=None, max_length=50)
    last_name: str | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, max_length=40)
    description: str = Field(min_length=1, max_length=4000)
    media_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _a_place(self) -> Open311Submission:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat/long: 经纬度须同时给出 / give both lat and long")
        if self.lat is None and self.address_string is None and self.address_id is None:
            raise ValueError(
                "lat/long: 需要位置（经纬度或地址）/ a location is required: lat & long, "
                "address_string or address_id"
            )
        return self

    def location(self) -> dict[str, Any]:
        place = {
            "lat": self.lat,
            "long": self.long,
            "address_string": self.address_string,
            "address_id": self.address_id,
        }
        return {k: v for k, v in place.items() if v is not None}

    def reporter_name(self) -> str | None:
        name = " ".join(n.strip() for n in (self.last_name, self.first_name) if n and n.strip())
        return name or None


class KeyIssue(_Body):
    office: str = Field(min_length=1, max_length=40, examples=["yanji"])
    label: str = Field(min_length=1, max_length=100, examples=["市民服务小程序"])


class KeyView(BaseModel):
    """An Open311 key as the office sees it later: never the key itself."""

    id: UUID
    office: str
    label: str
    issued_at: datetime
    revoked_at: datetime | None = None


class KeyIssued(KeyView):
    api_key: str
    """Shown once, in the answer that issues it; intake keeps only its hash."""


class PublicStep(BaseModel):
    step: str
    at: str
    text: str
    department: str | None = None
    deadline: str | None = None
    meeting: str | None = None
    """`on_agenda` and `off_agenda`: the meeting's title, as it was planned."""
    meeting_date: str | None = None
    """`on_agenda`: the day the meeting starts, in China."""


class PublicStatus(BaseModel):
    """What anyone holding the tracking code (查询码) sees: no person, no internal note."""

    office: str
    title: str
    category: str
    status: Status
    status_text: str
    timeline: list[dict[str, Any]]

    @classmethod
    def of(cls, issue: Issue, timeline: list[dict[str, Any]]) -> PublicStatus:
        return cls(
            office=issue.office,
            title=issue.title,
            category=issue.category,
            status=issue.status,  # type: ignore[arg-type]
            status_text=f"{STATUS_NAMES[issue.status]} / {issue.status}",
            timeline=[PublicStep(**s).model_dump(exclude_none=True) for s in timeline],
        )


# --- 回访 ------------------------------------------------------------------------------------


class CallbackRecord(_Body):
    """回访: whether the resident was reached, how satisfied, a note."""

    reached: bool
    satisfaction: Satisfaction | None = None
    note: str | None = Field(default=None, max_length=2000)
    called_at: Moment | None = None


class DueCallback(BaseModel):
    id: UUID
    office: str
    title: str
    category: str
    resolved_at: datetime
    reporter_name: str | None = None
    reporter_phone: str | None = None


class DueCallbacks(BaseModel):
    as_of: datetime
    working_days: int
    items: list[DueCallback]
