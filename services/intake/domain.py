"""Intake's domain (问题收集): pure aggregates, no I/O."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal, get_args
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from services.intake.activity import OutreachActivity
from services.intake.rules import (
    IssueRuleBroken,
    TransitionRefused,
    check_moment,
    cleaned_text,
    field_values,
    remember_command,
)
from shared.clock import china_day

DEFAULT_CATEGORIES = (
    "城市管理",
    "物业管理",
    "生态环境",
    "校园周边",
    "交通出行",
    "民生保障",
    "其他",
)

Source = Literal["outreach", "liaison_station", "visit", "online", "hotline"]
SOURCES: tuple[str, ...] = get_args(Source)
Decision = Literal["topic", "report", "refer", "answered", "duplicate", "rejected"]
DECISIONS: tuple[str, ...] = get_args(Decision)
Status = Literal[
    "submitted", "topic", "report", "referred", "resolved", "duplicate", "rejected", "closed"
]
STATUSES: tuple[str, ...] = get_args(Status)
STATUS_NAMES = {
    "submitted": "待筛选",
    "topic": "协商议题",
    "report": "社情民意",
    "referred": "已转办",
    "resolved": "已解决",
    "duplicate": "重复",
    "rejected": "不予采纳",
    "closed": "已办结",
}
_STATUS_OF_DECISION: dict[str, str] = {
    "topic": "topic",
    "report": "report",
    "refer": "referred",
    "answered": "resolved",
    "duplicate": "duplicate",
    "rejected": "rejected",
}
Satisfaction = Literal["satisfied", "basically_satisfied", "unsatisfied"]
SATISFACTIONS: tuple[str, ...] = get_args(Satisfaction)
SATISFACTION_NAMES = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
}
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")


def issue_id_for(office: str, idempotency_key: str | None) -> UUID:
    """A retried submission with the same key maps to the same issue, so it cannot duplicate."""
    if idempotency_key is None:
        return uuid4()
    return uuid5(NAMESPACE_URL, f"shangliang:intake:{office}:{idempotency_key}")


def activity_id_for(office: str, idempotency_key: str | None) -> UUID:
    """Like `issue_id_for`, in a namespace of its own: the same key names another activity."""
    if idempotency_key is None:
        return uuid4()
    return uuid5(NAMESPACE_URL, f"shangliang:intake:activity:{office}:{idempotency_key}")


def imported_key(row_key: str) -> str:
    """The key of a spreadsheet row: the office's own row number, apart from request keys."""
    return f"import:{row_key.strip()}"


_ISSUE_FIELDS = (
    "office",
    "title",
    "description",
    "category",
    "submitted_at",
    "community",
    "liaison_station",
    "source",
    "activity_id",
    "recorded_by",
    "submitted_key_problem",
    "reporter_name",
    "reporter_phone",
    "location",
    "media_url",
)


class Issue(Aggregate):
    """问题和建议: a problem or suggestion collected from residents."""

    id: UUID  # given on creation: see issue_id_for

    @event("Submitted")
    def __init__(
        self,
        office: str,
        title: str,
        description: str,
        category: str,
        submitted_at: datetime,
        community: str | None = None,
        liaison_station: str | None = None,
        source: str | None = None,
        activity_id: UUID | None = None,
        recorded_by: str | None = None,
        key_problem: bool = False,
        reporter_name: str | None = None,
        reporter_phone: str | None = None,
        location: dict[str, Any] | None = None,
        media_url: str | None = None,
    ) -> None:
        self.office = office
        self.title = title
        self.description = description
        self.category = category
        self.submitted_at = submitted_at
        self.community = community
        self.liaison_station = liaison_station
        self.source = source
        self.activity_id = activity_id
        self.recorded_by = recorded_by
        self.key_problem = key_problem
        # What a retried submission is compared with: a screening may change the flag since.
        self.submitted_key_problem = key_problem
        self.reporter_name = reporter_name
        self.reporter_phone = reporter_phone
        self.location = location
        self.media_url = media_url
        self.status: str = "submitted"
        self.screening: dict[str, Any] | None = None
        self.duplicate_of: UUID | None = None
        self.duplicates: list[UUID] = []
        self.resolved_at: datetime | None = None
        self.resolved_via: str | None = None
        self.resolving_cases: list[UUID] = []
        self.closed_at: datetime | None = None
        self.commands: dict[str, str] = {}
        self.cases: dict[UUID, dict[str, Any]] = {}
        self.agendas: dict[UUID, dict[str, Any]] = {}
        """The meetings whose agenda took the issue up (列入协商): title, start, when."""
        self.callbacks: list[dict[str, Any]] = []

    @classmethod
    def submit(
        cls,
        issue_id: UUID,
        office: str,
        title: str,
        description: str,
        category: str,
        submitted_at: datetime,
        now: datetime,
        categories: tuple[str, ...] = DEFAULT_CATEGORIES,
        community: str | None = None,
        liaison_station: str | None = None,
        source: str | None = None,
        activity: OutreachActivity | None = None,
        recorded_by: str | None = None,
        key_problem: bool = False,
        reporter_name: str | None = None,
        reporter_phone: str | None = None,
        location: dict[str, Any] | None = None,
        media_url: str | None = None,
    ) -> Issue:
        """Record an issue, checking what the submission must satisfy."""
        clean_title = cleaned_text("title", title, "标题")
        clean_description = cleaned_text("description", description, "描述")
        if category not in categories:
            raise IssueRuleBroken(
                "category",
                f"未知类别 / unknown category {category!r}; choose one of {', '.join(categories)}",
            )
        check_moment("submitted_at", submitted_at, now)
        if source is not None and source not in SOURCES:
            raise IssueRuleBroken(
                "source", f"未知来源 / unknown source {source!r}; one of {', '.join(SOURCES)}"
            )
        if activity is not None and activity.office != office:
            raise IssueRuleBroken(
                "activity_id", "活动不属于本政协 / the activity belongs to another office"
            )
        phone = cleaned_text("reporter_phone", reporter_phone, "联系电话", required=False)
        if phone is not None and not _PHONE.match(phone):
            raise IssueRuleBroken(
                "reporter_phone", "联系电话格式不正确 / not a phone number (digits, + and -)"
            )
        return cls(
            id=issue_id,
            office=office,
            title=clean_title,
            description=clean_description,
            category=category,
            submitted_at=submitted_at,
            community=cleaned_text("community", community, "社区", required=False),
            liaison_station=cleaned_text(
                "liaison_station", liaison_station, "联络站", required=False
            ),
            source=source,
            activity_id=None if activity is None else activity.id,
            recorded_by=cleaned_text("recorded_by", recorded_by, "记录委员", required=False),
            key_problem=key_problem,
            reporter_name=cleaned_text("reporter_name", reporter_name, "反映人", required=False),
            reporter_phone=phone,
            location=location or None,
            media_url=media_url,
        )

    def same_record(self, other: Issue, ignoring: tuple[str, ...] = ()) -> bool:
        """Whether a retried request asks for exactly what this issue already records."""
        names = tuple(n for n in _ISSUE_FIELDS if n not in ignoring)
        return field_values(self, names) == field_values(other, names)

    def _refuse_unless(self, *statuses: str, doing: str) -> None:
        if self.status not in statuses:
            raise TransitionRefused(
                f"问题当前状态为 {STATUS_NAMES[self.status]}，不能{doing} / the issue is "
                f"{self.status}; it cannot be {_DOING[doing]}",
                self.status,
            )

    def screen(
        self,
        decision: str,
        screened_at: datetime,
        screened_by: str,
        now: datetime,
        report_title: str | None = None,
        department: str | None = None,
        deadline: date | None = None,
        answer: str | None = None,
        duplicate_of: Issue | None = None,
        reason: str | None = None,
        key_problem: bool | None = None,
        command: tuple[str, str] | None = None,
    ) -> None:
        """筛选议题: exactly one decision per issue (again only after it is reopened).

        A `duplicate` also needs `duplicate_of.link_duplicate(self)` in the same save;
        `answered` resolves the issue at once. `key_problem` flags (or unflags) it as a
        重点难点问题 at screening; None keeps the flag it was submitted with.
        """
        self._refuse_unless("submitted", doing="筛选")
        if decision not in DECISIONS:
            raise IssueRuleBroken(
                "decision", f"未知决定 / unknown decision {decision!r}; one of {DECISIONS}"
            )
        check_moment("screened_at", screened_at, now, after=self.submitted_at)
        details: dict[str, Any] = {}
        if decision == "report":
            details["report_title"] = cleaned_text("report_title", report_title, "社情民意标题")
        elif decision == "refer":
            details["department"] = cleaned_text("department", department, "承办单位")
            if deadline is None:
                raise IssueRuleBroken("deadline", "需要办理期限 / a deadline is required")
            if deadline < china_day(screened_at):
                raise IssueRuleBroken(
                    "deadline", "办理期限早于筛选日期 / the deadline is before the screening"
                )
            details["deadline"] = deadline
        elif decision == "answered":
            details["answer"] = cleaned_text("answer", answer, "答复")
        elif decision == "duplicate":
            details["duplicate_of"] = self._original(duplicate_of)
        elif decision == "rejected":
            details["reason"] = cleaned_text("reason", reason, "不予采纳的原因")
        self._screened(
            self.office,
            decision,
            screened_at,
            screened_by,
            self.title,
            self.category,
            self.key_problem if key_problem is None else key_problem,
            details,
            command,
        )
        if decision == "answered":
            self._resolved(self.office, screened_at, "answered", None, None)
        elif decision == "duplicate" and duplicate_of is not None and duplicate_of.is_resolved:
            self.follow_original(duplicate_of)

    def _original(self, original: Issue | None) -> UUID:
        if original is None:
            raise IssueRuleBroken("duplicate_of", "需要原问题 / name the original issue")
        if original.id == self.id:
            raise IssueRuleBroken(
                "duplicate_of", "不能与自身重复 / an issue cannot duplicate itself"
            )
        if original.office != self.office:
            raise IssueRuleBroken(
                "duplicate_of", "原问题属于其他政协 / the original belongs to another office"
            )
        if original.status == "duplicate" or original.duplicate_of is not None:
            raise IssueRuleBroken(
                "duplicate_of",
                f"原问题本身是重复件，请指向 {original.duplicate_of} / the original is itself a "
                f"duplicate: name {original.duplicate_of}",
            )
        return original.id

    @event("Screened")
    def _screened(
        self,
        office: str,
        decision: str,
        screened_at: datetime,
        screened_by: str,
        title: str,
        category: str,
        key_problem: bool,
        details: dict[str, Any],
        command: tuple[str, str] | None,
    ) -> None:
        self.status = _STATUS_OF_DECISION[decision]
        self.key_problem = key_problem
        self.screening = {
            "decision": decision,
            "screened_at": screened_at,
            "screened_by": screened_by,
            **details,
        }
        if decision == "duplicate":
            self.duplicate_of = details["duplicate_of"]
        remember_command(self, command)

    def link_duplicate(self, duplicate: Issue) -> None:
        """The original keeps its duplicates, so that they follow it when it is resolved."""
        if duplicate.id not in self.duplicates:
            self._duplicate_linked(duplicate.id)

    @event("DuplicateLinked")
    def _duplicate_linked(self, duplicate_id: UUID) -> None:
        self.duplicates.append(duplicate_id)

    @property
    def is_resolved(self) -> bool:
        return self.status in ("resolved", "closed")

    def resolve_by_case(self, case_id: UUID, verified_at: datetime) -> bool:
        """A verified supervision case covers this issue; False if that changes nothing."""
        if self.is_resolved or case_id in self.resolving_cases:
            return False
        if self.status in ("rejected", "duplicate"):
            raise TransitionRefused(
                f"问题当前状态为 {STATUS_NAMES[self.status]}，不能解决 / the issue is "
                f"{self.status}; it cannot be resolved by a case",
                self.status,
            )
        self._resolved(self.office, verified_at, "case", case_id, None)
        return True

    def follow_original(self, original: Issue) -> bool:
        """A duplicate is resolved with its original; False if it no longer follows it."""
        if self.status != "duplicate" or self.duplicate_of != original.id:
            return False
        assert original.resolved_at is not None
        self._resolved(self.office, original.resolved_at, "original", None, original.id)
        return True

    @event("Resolved")
    def _resolved(
        self,
        office: str,
        resolved_at: datetime,
        via: str,
        case_id: UUID | None,
        original_id: UUID | None,
    ) -> None:
        self.status = "resolved"
        self.resolved_at = resolved_at
        self.resolved_via = via
        if case_id is not None:
            self.resolving_cases.append(case_id)

    def close(
        self, closed_at: datetime, now: datetime, command: tuple[str, str] | None = None
    ) -> None:
        """办结归档: only a resolved issue is closed."""
        self._refuse_unless("resolved", doing="办结")
        check_moment("closed_at", closed_at, now, after=self.resolved_at)
        self._closed(self.office, closed_at, command)

    @event("Closed")
    def _closed(self, office: str, closed_at: datetime, command: tuple[str, str] | None) -> None:
        self.status = "closed"
        self.closed_at = closed_at
        remember_command(self, command)

    def reopen(
        self,
        reason: str,
        reopened_at: datetime,
        now: datetime,
        command: tuple[str, str] | None = None,
    ) -> None:
        """重新打开: a closed issue goes back to awaiting screening."""
        self._refuse_unless("closed", doing="重新打开")
        why = cleaned_text("reason", reason, "重新打开的原因")
        check_moment("reopened_at", reopened_at, now, after=self.closed_at)
        self._reopened(self.office, reopened_at, why, command)

    @event("Reopened")
    def _reopened(
        self, office: str, reopened_at: datetime, reason: str, command: tuple[str, str] | None
    ) -> None:
        self.status = "submitted"
        self.screening = None
        self.duplicate_of = None
        self.resolved_at = None
        self.resolved_via = None
        self.closed_at = None
        remember_command(self, command)

    # --- what supervision tells about the cases that cover this issue ---------------------

    def note_case(
        self,
        case_id: UUID,
        step: str,
        at: datetime,
        department: str | None = None,
        deadline: date | None = None,
        note: str | None = None,
        meeting_id: UUID | None = None,
    ) -> bool:
        """督办进展: a case covering this issue was opened, sent back or reported complete;
        False if this step is known already (a replayed upstream event)."""
        known = self.cases.get(case_id)
        if known is not None and step in known["steps"]:
            same = known["steps"][step] == at.isoformat()
            if same or step == "opened":
                return False
        if known is None and step != "opened":
            return False
        self._case_noted(case_id, step, at, department, deadline, note, meeting_id)
        return True

    def note_agenda(
        self, meeting_id: UUID, title: str, starts_at: datetime, added_at: datetime
    ) -> bool:
        """议题列入协商: a meeting put the issue on its agenda; False if known already (a
        replayed upstream event)."""
        if meeting_id in self.agendas:
            return False
        self._agenda_noted(meeting_id, title, starts_at, added_at)
        return True

    @event("AgendaNoted")
    def _agenda_noted(
        self, meeting_id: UUID, title: str, starts_at: datetime, added_at: datetime
    ) -> None:
        self.agendas[meeting_id] = {"title": title, "starts_at": starts_at, "added_at": added_at}

    def note_agenda_left(self, meeting_id: UUID, removed_at: datetime) -> bool:
        """议题移出: the meeting took the issue off its agenda; False if it was not on it (an
        agenda this intake never heard of, or a replayed upstream event)."""
        if meeting_id not in self.agendas:
            return False
        self._agenda_left(meeting_id, self.agendas[meeting_id]["title"], removed_at)
        return True

    @event("AgendaLeft")
    def _agenda_left(self, meeting_id: UUID, title: str, removed_at: datetime) -> None:
        del self.agendas[meeting_id]

    @event("CaseNoted")
    def _case_noted(
        self,
        case_id: UUID,
        step: str,
        at: datetime,
        department: str | None,
        deadline: date | None,
        note: str | None,
        meeting_id: UUID | None,
    ) -> None:
        case = self.cases.setdefault(
            case_id, {"department": department, "deadline": deadline, "steps": {}}
        )
        case["steps"][step] = at.isoformat()
        if department is not None:
            case["department"] = department
        if deadline is not None:
            case["deadline"] = deadline
        if note is not None:
            case["note"] = note
        if meeting_id is not None:
            case["meeting_id"] = meeting_id

    @property
    def department(self) -> str | None:
        """The department in charge: the latest case's, else the referral's."""
        for case in reversed(self.cases.values()):
            return str(case["department"])
        return (self.screening or {}).get("department")

    @property
    def deadline(self) -> date | None:
        """The supervision deadline: the latest case's, else the referral's."""
        for case in reversed(self.cases.values()):
            found: date | None = case["deadline"]
            return found
        return (self.screening or {}).get("deadline")

    # --- 回访: the follow-up call with the resident -------------------------------------------

    def record_callback(
        self,
        reached: bool,
        satisfaction: str | None,
        note: str | None,
        called_at: datetime,
        called_by: str,
        now: datetime,
        command: tuple[str, str] | None = None,
    ) -> None:
        """回访: the office calls the resident back after the issue is resolved.

        `unsatisfied` reopens the issue: back under supervision when cases resolved it (the
        cases are sent back through events), otherwise back to screening.
        """
        self._refuse_unless("resolved", "closed", doing="回访")
        if reached and satisfaction not in SATISFACTIONS:
            raise IssueRuleBroken(
                "satisfaction",
                f"联系上居民时需要满意度 / satisfaction is required when the resident was "
                f"reached: one of {', '.join(SATISFACTIONS)}",
            )
        if not reached and satisfaction is not None:
            raise IssueRuleBroken(
                "satisfaction", "未联系上居民时不能有满意度 / no satisfaction when not reached"
            )
        check_moment("called_at", called_at, now, after=self.resolved_at)
        clean_note = cleaned_text("note", note, "回访记录", required=False)
        self._callback_recorded(
            self.office,
            reached,
            satisfaction,
            clean_note,
            called_at,
            called_by,
            list(self.resolving_cases) if satisfaction == "unsatisfied" else [],
            command,
        )

    @event("CallbackRecorded")
    def _callback_recorded(
        self,
        office: str,
        reached: bool,
        satisfaction: str | None,
        note: str | None,
        called_at: datetime,
        called_by: str,
        reopened_cases: list[UUID],
        command: tuple[str, str] | None,
    ) -> None:
        self.callbacks.append(
            {
                "reached": reached,
                "satisfaction": satisfaction,
                "note": note,
                "called_at": called_at,
                "called_by": called_by,
            }
        )
        if satisfaction == "unsatisfied":
            self.status = "referred" if reopened_cases else "submitted"
            if not reopened_cases:
                self.screening = None
                self.duplicate_of = None
            self.resolved_at = None
            self.resolved_via = None
            self.resolving_cases = []
            self.closed_at = None
        remember_command(self, command)

    def due_for_callback(self, resolved_before: datetime) -> bool:
        """Resolved before the cut-off and not yet called back since it was resolved."""
        return (
            self.is_resolved
            and self.resolved_at is not None
            and self.resolved_at <= resolved_before
            and not any(c["called_at"] >= self.resolved_at for c in self.callbacks)
        )


_DOING = {"筛选": "screened", "办结": "closed", "重新打开": "reopened", "回访": "called back"}
