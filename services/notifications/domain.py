"""Which event makes which notifications (通知), to whom, saying what: pure, no I/O.

Every notification has a deterministic id, uuid5 of the event (or the day and case) that
caused it, its kind and its recipient, so a redelivered event or a second scan makes the same
notification again, which the store keeps once. Text is Chinese first, English beside.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from shared.clock import CHINA, add_working_days, china_day, start_of_day
from shared.contracts import (
    CaseEscalatedV1,
    CaseOverdueV1,
    CaseReopenedV1,
    CaseVerifiedV1,
    Contract,
    LetterIssuedV1,
    MeetingCancelledV1,
    MeetingPlannedV1,
    MeetingPostponedV1,
)

NAMESPACE = uuid.UUID("5b1f0c8e-7a43-4d61-9d1e-2f3c4b5a6e70")

Kind = Literal[
    "letter_issued",
    "case_sent_back",
    "case_verified",
    "case_overdue",
    "case_escalated",
    "meeting_invitation",
    "meeting_postponed",
    "meeting_cancelled",
    "deadline_reminder",
    "deadline_today",
    "daily_digest",
    "weekly_digest",
]
Attachment = Literal["letter", "calendar"]

STEP_NAMES = {"escalate": "提级督办 / escalated"}
SCHEDULER_OWNS = frozenset({"reminder", "urge"})
"""Supervision's ladder steps whose notice is this service's own scheduler's (the reminder
N working days before, the deadline day's notice): one message each, not two alike."""
KIND_NAMES = {"thematic": "专题协商会", "onsite": "现场协商会", "written": "书面协商"}


def department(office: str, name: str) -> str:
    """The recipient key of a responsible department (承办单位) of an office."""
    return f"department:{office}:{name}"


def office_staff(office: str) -> str:
    """The recipient key of an office's staff (政协机关)."""
    return f"office:{office}"


def leaders(office: str) -> str:
    """The recipient key of an office's leaders (政协领导), who get the digests."""
    return f"leaders:{office}"


def notice_id(cause: str, kind: str, recipient: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{cause}|{kind}|{recipient}")


@dataclass(frozen=True)
class Notice:
    """One notification (通知) to one recipient; its deliveries are per address."""

    id: uuid.UUID
    cause: str
    """The event id (or the scheduler's key) it came from."""
    kind: Kind
    office: str
    recipient: str
    subject: str
    body: str
    created_at: datetime
    attachment: Attachment | None = None
    subject_id: str | None = None
    """The case or meeting it is about (an attachment is made from it)."""


def _notice(
    cause: str,
    kind: Kind,
    office: str,
    recipient: str,
    subject: str,
    lines: Sequence[str],
    at: datetime,
    attachment: Attachment | None = None,
    subject_id: str | None = None,
) -> Notice:
    return Notice(
        notice_id(cause, kind, recipient),
        cause,
        kind,
        office,
        recipient,
        subject,
        "\n".join(lines),
        at,
        attachment,
        subject_id,
    )


@dataclass(frozen=True)
class MeetingFacts:
    """What invitations need of a meeting: its calendar entry as it stands."""

    meeting_id: str
    offices: list[str]
    kind: str
    title: str
    theme: str
    starts_at: datetime
    ends_at: datetime
    venue: str | None
    sequence: int
    cancelled: bool = False


def _when(meeting: MeetingFacts) -> str:
    start, end = meeting.starts_at.astimezone(CHINA), meeting.ends_at.astimezone(CHINA)
    return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M}"


def notices_for(event_id: str, contract: Contract, meeting: MeetingFacts | None) -> list[Notice]:
    """The notifications an event makes (`meeting`: the meeting after the event, if any)."""
    match contract:
        case LetterIssuedV1():
            return [
                _notice(
                    event_id,
                    "letter_issued",
                    contract.office,
                    department(contract.office, contract.department),
                    f"督办函 {contract.number}，请于 {contract.deadline} 前办理 / "
                    f"Supervision letter {contract.number}, due {contract.deadline}",
                    [
                        f"{contract.department}：",
                        f"督办函 / letter: {contract.number}",
                        f"办理期限 / deadline: {contract.deadline}",
                        f"办理要求 / requirements: {contract.requirements}",
                        "督办函见附件 / the letter is attached (DOCX).",
                    ],
                    contract.issued_at,
                    "letter",
                    str(contract.case_id),
                )
            ]
        case CaseReopenedV1():
            return [
                _notice(
                    event_id,
                    "case_sent_back",
                    contract.office,
                    recipient,
                    f"督办件已退回重办，新期限 {contract.deadline} / "
                    f"Case sent back, new deadline {contract.deadline}",
                    [
                        f"承办单位 / department: {contract.department}",
                        f"退回理由 / reason: {contract.reason}",
                        f"新的办理期限 / new deadline: {contract.deadline}",
                    ],
                    contract.reopened_at,
                    subject_id=str(contract.case_id),
                )
                for recipient in _case_parties(contract.office, contract.department)
            ]
        case CaseVerifiedV1():
            return [
                _notice(
                    event_id,
                    "case_verified",
                    contract.office,
                    recipient,
                    "督办件已验收办结 / Case verified as done",
                    [
                        f"承办单位 / department: {contract.department}",
                        f"验收时间 / verified: {china_day(contract.verified_at)}",
                    ],
                    contract.verified_at,
                    subject_id=str(contract.case_id),
                )
                for recipient in _case_parties(contract.office, contract.department)
            ]
        case CaseOverdueV1():
            return [
                _notice(
                    event_id,
                    "case_overdue",
                    contract.office,
                    recipient,
                    f"督办件已逾期（期限 {contract.deadline}）/ "
                    f"Case overdue (deadline {contract.deadline})",
                    [
                        f"承办单位 / department: {contract.department}",
                        f"办理期限 / deadline: {contract.deadline}",
                        "请尽快报送办理情况 / please report on the case at once.",
                    ],
                    contract.overdue_at,
                    subject_id=str(contract.case_id),
                )
                for recipient in _case_parties(contract.office, contract.department)
            ]
        case CaseEscalatedV1() if contract.step in SCHEDULER_OWNS:
            # The same day's deadline_reminder / deadline_today says it already.
            return []
        case CaseEscalatedV1():
            parties = list(_case_parties(contract.office, contract.department))
            if contract.to_office:
                parties.append(leaders(contract.to_office))
            step = STEP_NAMES[contract.step]
            return [
                _notice(
                    event_id,
                    "case_escalated",
                    contract.office,
                    recipient,
                    f"督办升级：{step.split(' / ')[0]} / Case escalation: {step.split(' / ')[1]}",
                    [
                        f"承办单位 / department: {contract.department}",
                        f"督办步骤 / step: {step}",
                        *(
                            [f"提交至 / escalated to: {contract.to_office}"]
                            if contract.to_office
                            else []
                        ),
                    ],
                    contract.escalated_at,
                    subject_id=str(contract.case_id),
                )
                for recipient in parties
            ]
        case MeetingPlannedV1() | MeetingPostponedV1() | MeetingCancelledV1() if meeting:
            return _meeting_notices(event_id, contract, meeting)
    return []


def _case_parties(office: str, name: str) -> tuple[str, str]:
    return department(office, name), office_staff(office)


def _meeting_notices(event_id: str, contract: Contract, meeting: MeetingFacts) -> list[Notice]:
    kind_name = KIND_NAMES.get(meeting.kind, meeting.kind)
    where = [f"地点 / venue: {meeting.venue}"] if meeting.venue else []
    if isinstance(contract, MeetingPlannedV1):
        kind: Kind = "meeting_invitation"
        subject = f"会议邀请：{meeting.title} / Invitation: {meeting.title}"
        lines = [f"{kind_name}：{meeting.title}", f"协商主题 / theme: {meeting.theme}"]
        at = contract.planned_at
    elif isinstance(contract, MeetingPostponedV1):
        kind = "meeting_postponed"
        subject = f"会议延期：{meeting.title} / Postponed: {meeting.title}"
        lines = [f"{kind_name}：{meeting.title}", f"延期原因 / reason: {contract.reason}"]
        at = contract.postponed_at
    else:
        assert isinstance(contract, MeetingCancelledV1)
        kind = "meeting_cancelled"
        subject = f"会议取消：{meeting.title} / Cancelled: {meeting.title}"
        lines = [f"{kind_name}：{meeting.title}", f"取消原因 / reason: {contract.reason}"]
        at = contract.cancelled_at
    lines += [f"时间 / time: {_when(meeting)}", *where, "日程见附件 / calendar entry attached."]
    return [
        _notice(
            event_id,
            kind,
            meeting.offices[0],
            office_staff(office),
            subject,
            lines,
            at,
            "calendar",
            meeting.meeting_id,
        )
        for office in meeting.offices
    ]


# --- deadlines and digests ------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFacts:
    """What reminders and digests need of a supervision case (督办件)."""

    case_id: str
    office: str
    department: str
    deadline: date
    number: str | None
    done: bool
    """Completion reported or verified: nothing to remind of."""
    overdue: bool


@dataclass(frozen=True)
class IssueFacts:
    """What digests need of an issue (问题和建议)."""

    issue_id: str
    office: str
    submitted_on: date
    screened: bool


def _case_label(case: CaseFacts) -> str:
    return case.number or case.case_id[:8]


def reminders_due(
    cases: Iterable[CaseFacts],
    today: date,
    working_days: int,
) -> list[Notice]:
    """Reminders of open cases: from `working_days` working days before the deadline (once),
    and on the deadline day (once)."""
    at = start_of_day(today)
    found: list[Notice] = []
    for case in cases:
        if case.done or case.overdue:
            continue
        recipient = department(case.office, case.department)
        cause = f"deadline:{case.case_id}:{case.deadline}"
        label = _case_label(case)
        # Approximate for years the holiday calendar does not know: a reminder must not stop.
        first_day = add_working_days(case.deadline, -working_days, approximate=True)
        if today == case.deadline:
            found.append(
                _notice(
                    cause,
                    "deadline_today",
                    case.office,
                    recipient,
                    f"督办件 {label} 今天到期 / Case {label} is due today",
                    [
                        f"{case.department}：",
                        f"办理期限 / deadline: {case.deadline}（今天 / today）",
                    ],
                    at,
                    subject_id=case.case_id,
                )
            )
        elif first_day <= today < case.deadline:
            found.append(
                _notice(
                    cause,
                    "deadline_reminder",
                    case.office,
                    recipient,
                    f"督办件 {label} 将于 {case.deadline} 到期 / "
                    f"Case {label} is due {case.deadline}",
                    [f"{case.department}：", f"办理期限 / deadline: {case.deadline}"],
                    at,
                    subject_id=case.case_id,
                )
            )
    return found


@dataclass
class Digest:
    """摘要: what an office's leaders read at the start of a day (or the prefecture's, a week)."""

    new_issues: int = 0
    awaiting_screening: int = 0
    due_this_week: int = 0
    overdue_by_department: Counter[str] = field(default_factory=Counter)


def digest_of(
    cases: Iterable[CaseFacts], issues: Iterable[IssueFacts], since: date, today: date
) -> Digest:
    week_end = today + timedelta(days=6 - today.weekday())
    digest = Digest()
    for issue in issues:
        digest.new_issues += since <= issue.submitted_on < today
        digest.awaiting_screening += not issue.screened
    for case in cases:
        if case.done:
            continue
        if case.overdue:
            digest.overdue_by_department[case.department] += 1
        elif today <= case.deadline <= week_end:
            digest.due_this_week += 1
    return digest


def digests_due(
    offices: Sequence[str],
    prefecture: str,
    cases: Sequence[CaseFacts],
    issues: Sequence[IssueFacts],
    today: date,
) -> list[Notice]:
    """Each office's daily digest to its leaders; on Mondays the prefecture's weekly one
    (all offices) besides."""
    at = start_of_day(today)
    found = []
    for office in offices:
        digest = digest_of(
            (c for c in cases if c.office == office),
            (i for i in issues if i.office == office),
            today - timedelta(days=1),
            today,
        )
        found.append(_digest_notice("daily_digest", office, digest, today, at))
    if today.weekday() == 0:
        digest = digest_of(cases, issues, today - timedelta(days=7), today)
        found.append(_digest_notice("weekly_digest", prefecture, digest, today, at))
    return found


def _digest_notice(kind: Kind, office: str, digest: Digest, today: date, at: datetime) -> Notice:
    daily = kind == "daily_digest"
    period = "昨日 / yesterday" if daily else "上周 / last week"
    lines = [
        f"新收集问题（{period}）/ new issues: {digest.new_issues}",
        f"待筛选 / awaiting screening: {digest.awaiting_screening}",
        f"本周到期督办件 / cases due this week: {digest.due_this_week}",
        "逾期督办件（按承办单位）/ overdue cases by department:",
        *(f"  {name}: {count}" for name, count in sorted(digest.overdue_by_department.items())),
    ]
    if not digest.overdue_by_department:
        lines.append("  无 / none")
    title = "每日摘要 / Daily digest" if daily else "每周摘要 / Weekly digest"
    return _notice(
        f"{kind}:{office}:{today}",
        kind,
        office,
        leaders(office),
        f"{title} {today}",
        lines,
        at,
    )


# --- quiet hours ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """免打扰时段: a daily window in China Standard Time (it may run past midnight)."""

    start: time | None = None
    end: time | None = None

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        if not text.strip():
            return cls()
        try:
            first, second = (time.fromisoformat(part.strip()) for part in text.split("-"))
        except ValueError as error:
            raise ValueError(
                f"免打扰时段应写作 22:00-07:00 / quiet hours look like 22:00-07:00, not {text!r}"
            ) from error
        return cls(first, second)

    def contains(self, moment: datetime) -> bool:
        if self.start is None or self.end is None:
            return False
        now = moment.astimezone(CHINA).time()
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end
