"""Event contracts on the wire (事件契约): versioned, frozen, in a CloudEvents-style envelope.

Within a version only optional fields are added; a breaking change is a new version,
published beside the old until every consumer has moved. Every version stays readable.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Contract(BaseModel):
    """Base of every published event: knows its service, name and version.

    `occurred_at` is when the thing happened in the office's world (an issue written on paper
    in 2020 and typed in today happened in 2020); the envelope's `time` is when it was stored.
    Statistics and as-of views count by `occurred_at`.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    service: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[int]
    occurred_field: ClassVar[str]

    @classmethod
    def type_name(cls) -> str:
        return f"shangliang.{cls.service}.{cls.name}.v{cls.version}"

    def subject(self, office: str) -> str:
        """The NATS subject, e.g. `intake.yanji.IssueSubmitted.v1`."""
        return f"{self.service}.{office}.{self.name}.v{self.version}"

    @property
    def occurred_at(self) -> datetime:
        moment: datetime = getattr(self, self.occurred_field)
        return moment


# --- intake (问题收集) ---------------------------------------------------------------------

IssueSource = Literal["outreach", "liaison_station", "visit", "online", "hotline"]
ScreeningDecision = Literal["topic", "report", "refer", "answered", "duplicate", "rejected"]


class _Intake(Contract):
    service: ClassVar[str] = "intake"
    version: ClassVar[int] = 1


class ActivityRecordedV1(_Intake):
    """委员进基层活动已记录: an outreach activity (one 期) with the members present (人次)."""

    name: ClassVar[str] = "ActivityRecorded"
    occurred_field: ClassVar[str] = "held_at"

    activity_id: UUID
    office: str
    held_at: datetime
    """Start of the activity (Thursday afternoons in the pilot)."""
    community: str | None = None
    liaison_station: str | None = None
    activity_group: str | None = None
    members: list[str]
    """The members present; their count is the activity's member participations (人次)."""
    note: str = ""


class ActivityCorrectedV1(_Intake):
    """委员进基层活动已更正: the members present, as corrected; the full list replaces the old."""

    name: ClassVar[str] = "ActivityCorrected"
    occurred_field: ClassVar[str] = "corrected_at"

    activity_id: UUID
    office: str
    members: list[str]
    reason: str
    corrected_at: datetime


class IssueSubmittedV1(_Intake):
    """问题和建议已收集: an issue was recorded for an office. Never carries the reporter."""

    name: ClassVar[str] = "IssueSubmitted"
    occurred_field: ClassVar[str] = "submitted_at"

    issue_id: UUID
    office: str
    title: str
    description: str
    category: str
    submitted_at: datetime
    community: str | None = None
    liaison_station: str | None = None
    source: IssueSource | None = None
    activity_id: UUID | None = None
    recorded_by: str | None = None
    """The member who recorded it."""
    key_problem: bool = False
    """重点难点问题."""


class IssueScreenedV1(_Intake):
    """议题已筛选: the leading group's one decision on an issue, with what others need of it.

    `refer` carries department, deadline and the issue's title and category, so supervision
    can open its case from this event alone.
    """

    name: ClassVar[str] = "IssueScreened"
    occurred_field: ClassVar[str] = "screened_at"

    issue_id: UUID
    office: str
    decision: ScreeningDecision
    screened_at: datetime
    screened_by: str
    title: str
    category: str
    key_problem: bool = False
    report_title: str | None = None
    """`report`: the title of the 《社情民意》 report."""
    department: str | None = None
    """`refer`: the responsible department (承办单位)."""
    deadline: date | None = None
    """`refer`: the department's deadline."""
    answer: str | None = None
    """`answered`: how it was solved on the spot."""
    duplicate_of: UUID | None = None
    """`duplicate`: the original issue, of the same office."""
    reason: str | None = None
    """`rejected`: why."""


class IssueResolvedV1(_Intake):
    """问题已解决: answered on the spot, by a verified supervision case, or with its original."""

    name: ClassVar[str] = "IssueResolved"
    occurred_field: ClassVar[str] = "resolved_at"

    issue_id: UUID
    office: str
    resolved_at: datetime
    via: Literal["answered", "case", "original"]
    case_id: UUID | None = None
    original_id: UUID | None = None
    """`original`: the issue this duplicate follows."""


class IssueClosedV1(_Intake):
    """问题已办结归档: an office closed a resolved issue."""

    name: ClassVar[str] = "IssueClosed"
    occurred_field: ClassVar[str] = "closed_at"

    issue_id: UUID
    office: str
    closed_at: datetime


class IssueReopenedV1(_Intake):
    """问题已重新打开: a closed issue reopened with a reason; it awaits screening again."""

    name: ClassVar[str] = "IssueReopened"
    occurred_field: ClassVar[str] = "reopened_at"

    issue_id: UUID
    office: str
    reopened_at: datetime
    reason: str


CallbackSatisfaction = Literal["satisfied", "basically_satisfied", "unsatisfied"]


class IssueCallbackRecordedV1(_Intake):
    """回访已记录: the office called the resident back after the issue was resolved.

    `unsatisfied` reopened the issue; `reopened_cases` are the supervision cases that had
    resolved it, which supervision sends back.
    """

    name: ClassVar[str] = "IssueCallbackRecorded"
    occurred_field: ClassVar[str] = "called_at"

    issue_id: UUID
    office: str
    reached: bool
    satisfaction: CallbackSatisfaction | None = None
    called_at: datetime
    reopened_cases: list[UUID] = Field(default_factory=list)


# --- meetings (协商会议) -------------------------------------------------------------------

MeetingKind = Literal["thematic", "onsite", "written"]


class _Meetings(Contract):
    service: ClassVar[str] = "meetings"
    version: ClassVar[int] = 1


class Outcome(BaseModel):
    """协商成果: one recommendation to one responsible department, answering agenda issues."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    outcome_id: UUID
    issue_ids: list[UUID]
    recommendation: str
    department: str
    deadline: date


class Attendee(BaseModel):
    """Someone present at a meeting, or who sent a written opinion."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    person_id: str
    name: str
    role: str
    """member | expert | department_head | …"""


class MeetingPlannedV1(_Meetings):
    """协商会议已计划. `offices[0]` organises; more offices hold it jointly."""

    name: ClassVar[str] = "MeetingPlanned"
    occurred_field: ClassVar[str] = "planned_at"

    meeting_id: UUID
    offices: list[str]
    kind: MeetingKind
    title: str
    theme: str
    starts_at: datetime
    ends_at: datetime
    venue: str | None = None
    submission_deadline: datetime | None = None
    """Written consultation (书面协商): opinions are taken until then."""
    planned_at: datetime


class TopicAddedV1(_Meetings):
    """议题已列入协商: an issue intake screened as `topic` is on this meeting's agenda."""

    name: ClassVar[str] = "TopicAdded"
    occurred_field: ClassVar[str] = "added_at"

    meeting_id: UUID
    offices: list[str]
    issue_id: UUID
    issue_office: str
    added_at: datetime
    meeting_title: str | None = None
    starts_at: datetime | None = None
    """The meeting's title and start as planned when the topic was added, for the resident's
    public timeline (added in v1: optional, None in events published before)."""


class TopicRemovedV1(_Meetings):
    """议题已移出: the issue left the agenda and may go on another meeting's."""

    name: ClassVar[str] = "TopicRemoved"
    occurred_field: ClassVar[str] = "removed_at"

    meeting_id: UUID
    offices: list[str]
    issue_id: UUID
    issue_office: str
    removed_at: datetime


class MeetingHeldV1(_Meetings):
    """协商会议已召开 (for a written consultation: closed, the opinions in)."""

    name: ClassVar[str] = "MeetingHeld"
    occurred_field: ClassVar[str] = "held_at"

    meeting_id: UUID
    offices: list[str]
    kind: MeetingKind
    held_at: datetime
    attendance: list[Attendee]
    issue_ids: list[UUID]
    """The agenda as it stood."""


class OpinionReceivedV1(_Meetings):
    """书面意见已收到: one invited participant's written opinion."""

    name: ClassVar[str] = "OpinionReceived"
    occurred_field: ClassVar[str] = "received_at"

    meeting_id: UUID
    offices: list[str]
    participant: Attendee
    opinion: str
    received_at: datetime


class MeetingConcludedV1(_Meetings):
    """协商会议已形成成果: each outcome opens one supervision case."""

    name: ClassVar[str] = "MeetingConcluded"
    occurred_field: ClassVar[str] = "concluded_at"

    meeting_id: UUID
    offices: list[str]
    kind: MeetingKind
    title: str
    concluded_at: datetime
    outcomes: list[Outcome]


class MeetingCancelledV1(_Meetings):
    """协商会议已取消: its topics are free for another meeting."""

    name: ClassVar[str] = "MeetingCancelled"
    occurred_field: ClassVar[str] = "cancelled_at"

    meeting_id: UUID
    offices: list[str]
    cancelled_at: datetime
    reason: str
    issue_ids: list[UUID]


class MeetingPostponedV1(_Meetings):
    """协商会议已延期: a new time window; the old one stays in the history."""

    name: ClassVar[str] = "MeetingPostponed"
    occurred_field: ClassVar[str] = "postponed_at"

    meeting_id: UUID
    offices: list[str]
    starts_at: datetime
    ends_at: datetime
    submission_deadline: datetime | None = None
    postponed_at: datetime
    reason: str


# --- supervision (督办) --------------------------------------------------------------------

FollowUpKind = Literal["research", "inspection", "symposium"]
EscalationStep = Literal["reminder", "urge", "escalate"]
"""提醒 (N working days before) · 催办 (at the deadline) · 提级督办 (to the prefecture)."""


class _Supervision(Contract):
    service: ClassVar[str] = "supervision"
    version: ClassVar[int] = 1


class CaseOpenedV1(_Supervision):
    """督办件已立项: from a meeting outcome or from an intake `refer` decision, exactly once."""

    name: ClassVar[str] = "CaseOpened"
    occurred_field: ClassVar[str] = "opened_at"

    case_id: UUID
    office: str
    origin: Literal["outcome", "referral"]
    meeting_id: UUID | None = None
    outcome_id: UUID | None = None
    issue_ids: list[UUID]
    department: str
    deadline: date
    requirements: str
    opened_at: datetime
    meeting_title: str | None = None
    """The meeting an outcome's case came from, as its letters name it (added in v1: optional)."""


class LetterIssuedV1(_Supervision):
    """督办函已发出, numbered per office and year, e.g. 延州政协督〔2020〕3号."""

    name: ClassVar[str] = "LetterIssued"
    occurred_field: ClassVar[str] = "issued_at"

    case_id: UUID
    office: str
    department: str
    number: str
    year: int
    sequence: int
    deadline: date
    requirements: str
    issued_at: datetime


class CaseAcknowledgedV1(_Supervision):
    """承办单位已签收."""

    name: ClassVar[str] = "CaseAcknowledged"
    occurred_field: ClassVar[str] = "acknowledged_at"

    case_id: UUID
    office: str
    department: str
    acknowledged_at: datetime


class ProgressReportedV1(_Supervision):
    """办理进展已报告."""

    name: ClassVar[str] = "ProgressReported"
    occurred_field: ClassVar[str] = "reported_at"

    case_id: UUID
    office: str
    department: str
    note: str
    reported_at: datetime


class FollowUpRecordedV1(_Supervision):
    """跟踪督办已记录: 调研 / 视察 / 座谈 with the members who went."""

    name: ClassVar[str] = "FollowUpRecorded"
    occurred_field: ClassVar[str] = "held_at"

    case_id: UUID
    office: str
    kind: FollowUpKind
    held_at: datetime
    members: list[str]
    note: str = ""


class CompletionReportedV1(_Supervision):
    """承办单位已报告办结."""

    name: ClassVar[str] = "CompletionReported"
    occurred_field: ClassVar[str] = "reported_at"

    case_id: UUID
    office: str
    department: str
    note: str
    reported_at: datetime


class CaseVerifiedV1(_Supervision):
    """督办件已验收: the office accepted the work; the covered issues are resolved."""

    name: ClassVar[str] = "CaseVerified"
    occurred_field: ClassVar[str] = "verified_at"

    case_id: UUID
    office: str
    department: str
    issue_ids: list[UUID]
    verified_at: datetime


class CaseReopenedV1(_Supervision):
    """督办件已退回重办: sent back with a reason and a new deadline."""

    name: ClassVar[str] = "CaseReopened"
    occurred_field: ClassVar[str] = "reopened_at"

    case_id: UUID
    office: str
    department: str
    reason: str
    deadline: date
    reopened_at: datetime
    cause: Literal["office", "callback"] = "office"
    """Who sent it back: the office on inspection, or the resident unsatisfied when called
    back (回访不满意) after it was verified (added in v1: optional)."""


class CaseOverdueV1(_Supervision):
    """督办件已逾期: emitted once by the service's scheduler.

    `overdue_at` is the end of the deadline day in China (`shared.clock.end_of_day`), not
    when the scheduler noticed, so a year's figures do not depend on when the scheduler ran.
    """

    name: ClassVar[str] = "CaseOverdue"
    occurred_field: ClassVar[str] = "overdue_at"

    case_id: UUID
    office: str
    department: str
    deadline: date
    issue_ids: list[UUID]
    overdue_at: datetime


class CaseEscalatedV1(_Supervision):
    """督办升级: a step of the office's escalation ladder, each step once."""

    name: ClassVar[str] = "CaseEscalated"
    occurred_field: ClassVar[str] = "escalated_at"

    case_id: UUID
    office: str
    department: str
    step: EscalationStep
    to_office: str | None = None
    """`escalate`: the prefecture office it goes up to."""
    escalated_at: datetime
    deadline: date | None = None
    """The deadline the step was for (added later; None in events published before)."""


class RetractedStep(BaseModel):
    """A deadline step a retraction withdraws, as it was published (its time and deadline)."""

    model_config = ConfigDict(frozen=True)

    step: Literal["reminder", "urge", "overdue", "escalate"]
    deadline: date
    at: datetime


class CaseStepsRetractedV1(_Supervision):
    """督办提醒撤销: deadline steps (reminder, 催办, overdue, 提级督办) the scheduler recorded
    that a back-dated record shows never fell due — a deadline set, or the work reported
    done, before their time. The steps stay published; readers count them as withdrawn.

    `retracted_at` is the date of the record that disproves them (never after any of them),
    so figures as of any day agree with it.
    """

    name: ClassVar[str] = "CaseStepsRetracted"
    occurred_field: ClassVar[str] = "retracted_at"

    case_id: UUID
    office: str
    department: str
    issue_ids: list[UUID]
    steps: list[RetractedStep]
    retracted_at: datetime


CONTRACTS: dict[str, type[Contract]] = {
    c.type_name(): c
    for c in (
        ActivityRecordedV1,
        ActivityCorrectedV1,
        IssueSubmittedV1,
        IssueScreenedV1,
        IssueResolvedV1,
        IssueClosedV1,
        IssueReopenedV1,
        IssueCallbackRecordedV1,
        MeetingPlannedV1,
        TopicAddedV1,
        TopicRemovedV1,
        MeetingHeldV1,
        OpinionReceivedV1,
        MeetingConcludedV1,
        MeetingCancelledV1,
        MeetingPostponedV1,
        CaseOpenedV1,
        LetterIssuedV1,
        CaseAcknowledgedV1,
        ProgressReportedV1,
        FollowUpRecordedV1,
        CompletionReportedV1,
        CaseVerifiedV1,
        CaseReopenedV1,
        CaseOverdueV1,
        CaseEscalatedV1,
        CaseStepsRetractedV1,
    )
}


class Actor(BaseModel):
    """Who caused a stored event (经办人): the token's subject and office, the role that
    authorized the command, and the request it came in; `system:…` for a service's own
    processes (another service's events, the deadline scheduler)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    office: str | None = None
    role: str | None = None
    """The role the command required; None where no role was asked for."""
    roles: list[str] = Field(default_factory=list)
    department: str | None = None
    request_id: str | None = None


class Envelope(BaseModel):
    """CloudEvents-style envelope: `id` is stable per event, so re-publishing is harmless.

    `actor` (added later, optional) names who caused the event; events stored before it
    existed, and readers built before it, go without.
    """

    model_config = ConfigDict(frozen=True)

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    time: datetime
    subject: str
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)
    actor: Actor | None = None

    @classmethod
    def wrap(
        cls,
        event_id: str,
        time: datetime,
        subject: str,
        contract: Contract,
        actor: Actor | None = None,
    ) -> Envelope:
        return cls(
            id=event_id,
            source=f"/shangliang/{contract.service}",
            type=contract.type_name(),
            time=time,
            subject=subject,
            data=contract.model_dump(mode="json"),
            actor=actor,
        )

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, payload: bytes) -> Envelope:
        return cls.model_validate_json(payload)

    def contract(self) -> Contract | None:
        """The typed event, or None for a type this build does not know (a newer producer)."""
        contract_class = CONTRACTS.get(self.type)
        return None if contract_class is None else contract_class.model_validate(self.data)


class UndecodableMessage(Exception):
    """A message on a stream that is not a valid envelope of a known contract."""


def decode(payload: bytes) -> tuple[Envelope, Contract | None]:
    try:
        envelope = Envelope.from_bytes(payload)
        return envelope, envelope.contract()
    except (ValidationError, json.JSONDecodeError) as error:
        raise UndecodableMessage(str(error)) from error
