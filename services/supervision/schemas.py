"""Supervision's HTTP bodies and answers (请求与响应): what the routes take and return."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from services.supervision.domain import STATUS_LABELS, Letter, SupervisionCase
from shared.web import ChinaTime, IsoDate, RequestBody


class _Body(RequestBody):
    pass


class LetterRequest(_Body):
    """A supervision letter: the requirements and a deadline, as a date or in working days."""

    requirements: str = Field(min_length=1, max_length=5000)
    deadline: IsoDate | None = Field(default=None, examples=["2020-09-30"])
    working_days: int | None = Field(default=None, ge=1, le=250, examples=[15])
    """Working days after the letter's date, official holidays and 调休 counted."""
    issued_at: ChinaTime | None = None

    @model_validator(mode="after")
    def _one_deadline(self) -> LetterRequest:
        if (self.deadline is None) == (self.working_days is None):
            raise ValueError(
                "请给出 deadline 或 working_days 之一 / give exactly one of deadline, working_days"
            )
        return self


class AcknowledgementRequest(_Body):
    acknowledged_at: ChinaTime | None = None


class ReportRequest(_Body):
    note: str = Field(min_length=1, max_length=5000)
    reported_at: ChinaTime | None = None


class FollowUpRequest(_Body):
    kind: Literal["research", "inspection", "symposium"]
    held_at: ChinaTime
    members: list[str] = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=5000)


class VerificationRequest(_Body):
    verified_at: ChinaTime | None = None


class SendBackRequest(_Body):
    reason: str = Field(min_length=1, max_length=5000)
    deadline: IsoDate
    reopened_at: ChinaTime | None = None


class LetterView(BaseModel):
    case_id: UUID
    office: str
    department: str
    number: str
    year: int
    sequence: int
    deadline: date
    requirements: str
    issued_at: datetime
    document: str
    """Where the printable DOCX is."""

    @classmethod
    def of(cls, case: SupervisionCase, letter: Letter) -> LetterView:
        return cls(
            case_id=case.id,
            office=case.office,
            department=case.department,
            number=letter.number,
            year=letter.year,
            sequence=letter.sequence,
            deadline=letter.deadline,
            requirements=letter.requirements,
            issued_at=letter.issued_at,
            document=f"/cases/{case.id}/letters/{letter.sequence}.docx",
        )


class ReportView(BaseModel):
    note: str
    reported_at: datetime


class FollowUpView(BaseModel):
    kind: str
    held_at: datetime
    members: list[str]
    note: str


class EscalationView(BaseModel):
    step: str
    deadline: date
    escalated_at: datetime


class StepView(BaseModel):
    event: str
    at: datetime
    note: str


class CaseView(BaseModel):
    id: UUID
    office: str
    origin: str
    meeting_id: UUID | None
    outcome_id: UUID | None
    issue_ids: list[UUID]
    department: str
    deadline: date
    requirements: str
    opened_at: datetime
    status: str
    status_label: str
    overdue: bool
    letters: list[LetterView]
    acknowledged_at: datetime | None
    progress: list[ReportView]
    follow_ups: list[FollowUpView]
    completion: ReportView | None
    verified_at: datetime | None
    escalations: list[EscalationView]
    history: list[StepView]
    version: int

    @classmethod
    def of(cls, case: SupervisionCase) -> CaseView:
        return cls(
            id=case.id,
            office=case.office,
            origin=case.origin,
            meeting_id=case.meeting_id,
            outcome_id=case.outcome_id,
            issue_ids=case.issue_ids,
            department=case.department,
            deadline=case.deadline,
            requirements=case.requirements,
            opened_at=case.opened_at,
            status=case.status,
            status_label=STATUS_LABELS[case.status],
            overdue=case.overdue,
            letters=[LetterView.of(case, letter) for letter in case.letters],
            acknowledged_at=case.acknowledged_at,
            progress=[ReportView(note=r.note, reported_at=r.reported_at) for r in case.progress],
            follow_ups=[
                FollowUpView(kind=f.kind, held_at=f.held_at, members=list(f.members), note=f.note)
                for f in case.follow_ups
            ],
            completion=(
                None
                if case.completion is None
                else ReportView(note=case.completion.note, reported_at=case.completion.reported_at)
            ),
            verified_at=case.verified_at,
            escalations=[
                EscalationView(step=s, deadline=d, escalated_at=at) for s, d, at in case.escalations
            ],
            history=[StepView(event=s.event, at=s.at, note=s.note) for s in case.history],
            version=case.version,
        )


class CasePage(BaseModel):
    items: list[CaseView]
    total: int
    page: int
    page_size: int
