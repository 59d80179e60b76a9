"""Facts (事实) the read side keeps, and what is derived from them: pure, no I/O.

Every published event becomes one or more facts, each keyed by the entity it is about (an
issue, an outreach activity, a meeting, a supervision case) and by the event's id. Whatever
the read side shows — an issue's combined status, a meeting's state, the yearly counters — is
a function of an entity's set of facts, ordered by when they happened (`occurred_at`), never
by when they arrived. So the three streams may interleave in any order, and a re-published
event (same id) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from shared.consumer import Delivered
from shared.contracts import (
    ActivityCorrectedV1,
    ActivityRecordedV1,
    CaseAcknowledgedV1,
    CaseEscalatedV1,
    CaseOpenedV1,
    CaseOverdueV1,
    CaseReopenedV1,
    CaseVerifiedV1,
    CompletionReportedV1,
    Contract,
    FollowUpRecordedV1,
    IssueClosedV1,
    IssueReopenedV1,
    IssueResolvedV1,
    IssueScreenedV1,
    IssueSubmittedV1,
    LetterIssuedV1,
    MeetingCancelledV1,
    MeetingConcludedV1,
    MeetingHeldV1,
    MeetingPlannedV1,
    MeetingPostponedV1,
    OpinionReceivedV1,
    ProgressReportedV1,
    TopicAddedV1,
    TopicRemovedV1,
)

CHINA = ZoneInfo("Asia/Shanghai")
TOTAL = "*"
"""The office key of the all-offices counters (a joint meeting counts once there)."""

ISSUE, ACTIVITY, MEETING, CASE = "issue", "activity", "meeting", "case"


def china_year(moment: datetime) -> int:
    """The calendar year in China Standard Time: the year an event counts in."""
    return moment.astimezone(CHINA).year


def china_time(moment: datetime) -> str:
    """A fixed-width China Standard Time text: sorts as the moments it names."""
    return moment.astimezone(CHINA).isoformat(timespec="microseconds")


class Fact(NamedTuple):
    """One thing that happened to one entity; a row of the `facts` table, in its order."""

    entity: str
    entity_id: str
    event_id: str
    stream: str
    at: str
    """When it happened (the contract's `occurred_at`), China Standard Time, fixed width."""
    year: int
    step: str
    office: str
    ref_id: str | None
    """The meeting or case it belongs to, for an issue's fact."""
    detail: str | None
    """The one value queries filter on: a screening decision, a meeting kind, a letter number."""
    data: dict[str, Any]


# Lifecycle order of an issue's steps: breaks ties between facts of the same moment.
ISSUE_RANK = {
    "submitted": 0,
    "screened": 1,
    "topic_added": 2,
    "topic_removed": 3,
    "meeting_cancelled": 3,
    "meeting_held": 4,
    "meeting_concluded": 5,
    "case_opened": 6,
    "case_overdue": 7,
    "case_verified": 8,
    "resolved": 9,
    "closed": 10,
    "reopened": 11,
}

STATUS_LABELS = {
    "submitted": "已收集",
    "topic": "已列为协商议题",
    "report": "已报送社情民意",
    "referred": "已交办",
    "answered": "已当场答复",
    "duplicate": "重复问题",
    "rejected": "不予采纳",
    "on_agenda": "已列入协商",
    "consulted": "已协商",
    "under_supervision": "督办中",
    "overdue": "逾期",
    "resolved": "已解决",
    "closed": "已办结",
}
SCREENING_STATUS = {
    "topic": "topic",
    "report": "report",
    "refer": "referred",
    "answered": "answered",
    "duplicate": "duplicate",
    "rejected": "rejected",
}
STEP_LABELS = {
    "submitted": "收集问题 / submitted",
    "screened": "筛选 / screened",
    "topic_added": "列入协商议程 / on a meeting's agenda",
    "topic_removed": "移出议程 / taken off the agenda",
    "meeting_cancelled": "会议取消 / meeting cancelled",
    "meeting_held": "召开协商会议 / consulted",
    "meeting_concluded": "形成协商成果 / outcome",
    "case_opened": "督办立项 / case opened",
    "case_overdue": "督办逾期 / overdue",
    "case_verified": "督办验收 / case verified",
    "resolved": "已解决 / resolved",
    "closed": "办结归档 / closed",
    "reopened": "重新打开 / reopened",
    "letter_issued": "发出督办函 / letter issued",
    "acknowledged": "承办单位签收 / acknowledged",
    "progress_reported": "报告进展 / progress reported",
    "follow_up_recorded": "跟踪督办 / follow-up",
    "completion_reported": "报告办结 / completion reported",
    "case_reopened": "退回重办 / sent back",
    "case_escalated": "督办升级 / escalated",
}


def facts_of(stream: str, message: Delivered) -> Iterator[Fact]:
    """The facts one message adds; nothing for an event the read side does not use."""
    event = message.contract
    if event is None:
        return
    at = event.occurred_at
    base = (message.envelope.id, stream, china_time(at), china_year(at))

    def fact(
        entity: str,
        entity_id: object,
        step: str,
        office: str,
        ref_id: object = None,
        detail: str | None = None,
        **data: Any,
    ) -> Fact:
        ref = None if ref_id is None else str(ref_id)
        return Fact(entity, str(entity_id), *base, step, office, ref, detail, data)

    yield from _facts(event, fact)


def _facts(event: Contract, fact: Any) -> Iterator[Fact]:
    match event:
        case IssueSubmittedV1():
            yield fact(
                ISSUE,
                event.issue_id,
                "submitted",
                event.office,
                title=event.title,
                category=event.category,
                community=event.community,
                liaison_station=event.liaison_station,
                source=event.source,
                activity_id=None if event.activity_id is None else str(event.activity_id),
                key_problem=event.key_problem,
            )
        case IssueScreenedV1():
            yield fact(
                ISSUE,
                event.issue_id,
                "screened",
                event.office,
                None,
                event.decision,
                key_problem=event.key_problem,
                department=event.department,
                report_title=event.report_title,
                duplicate_of=None if event.duplicate_of is None else str(event.duplicate_of),
                reason=event.reason,
            )
        case IssueResolvedV1():
            yield fact(ISSUE, event.issue_id, "resolved", event.office, event.case_id, event.via)
        case IssueClosedV1():
            yield fact(ISSUE, event.issue_id, "closed", event.office)
        case IssueReopenedV1():
            yield fact(ISSUE, event.issue_id, "reopened", event.office, reason=event.reason)
        case ActivityRecordedV1():
            yield fact(
                ACTIVITY,
                event.activity_id,
                "activity_recorded",
                event.office,
                members=len(event.members),
                community=event.community,
                liaison_station=event.liaison_station,
                activity_group=event.activity_group,
            )
        case ActivityCorrectedV1():
            yield fact(
                ACTIVITY,
                event.activity_id,
                "activity_corrected",
                event.office,
                members=len(event.members),
                reason=event.reason,
            )
        case MeetingPlannedV1():
            yield fact(
                MEETING,
                event.meeting_id,
                "meeting_planned",
                event.offices[0],
                None,
                event.kind,
                offices=event.offices,
                title=event.title,
                starts_at=china_time(event.starts_at),
            )
        case MeetingPostponedV1():
            yield fact(
                MEETING,
                event.meeting_id,
                "meeting_postponed",
                event.offices[0],
                starts_at=china_time(event.starts_at),
            )
        case TopicAddedV1() | TopicRemovedV1():
            step = "topic_added" if isinstance(event, TopicAddedV1) else "topic_removed"
            yield fact(ISSUE, event.issue_id, step, event.issue_office, event.meeting_id)
            yield fact(MEETING, event.meeting_id, step, event.offices[0], event.issue_id)
        case MeetingHeldV1():
            yield fact(
                MEETING,
                event.meeting_id,
                "meeting_held",
                event.offices[0],
                None,
                event.kind,
                offices=event.offices,
                attendance=len(event.attendance),
            )
            for issue_id in event.issue_ids:
                yield fact(ISSUE, issue_id, "meeting_held", "", event.meeting_id, event.kind)
        case OpinionReceivedV1():
            yield fact(MEETING, event.meeting_id, "opinion_received", event.offices[0])
        case MeetingConcludedV1():
            yield fact(
                MEETING,
                event.meeting_id,
                "meeting_concluded",
                event.offices[0],
                outcomes=len(event.outcomes),
            )
            for outcome in event.outcomes:
                for issue_id in outcome.issue_ids:
                    yield fact(
                        ISSUE,
                        issue_id,
                        "meeting_concluded",
                        "",
                        event.meeting_id,
                        str(outcome.outcome_id),
                        department=outcome.department,
                    )
        case MeetingCancelledV1():
            yield fact(MEETING, event.meeting_id, "meeting_cancelled", event.offices[0])
            for issue_id in event.issue_ids:
                yield fact(ISSUE, issue_id, "meeting_cancelled", "", event.meeting_id)
        case CaseOpenedV1():
            yield fact(
                CASE,
                event.case_id,
                "case_opened",
                event.office,
                event.meeting_id,
                event.origin,
                department=event.department,
                deadline=event.deadline.isoformat(),
                issue_ids=[str(i) for i in event.issue_ids],
            )
            for issue_id in event.issue_ids:
                yield fact(
                    ISSUE,
                    issue_id,
                    "case_opened",
                    event.office,
                    event.case_id,
                    event.origin,
                    department=event.department,
                )
        case CaseOverdueV1() | CaseVerifiedV1():
            step = "case_overdue" if isinstance(event, CaseOverdueV1) else "case_verified"
            yield fact(CASE, event.case_id, step, event.office, None, event.department)
            for issue_id in event.issue_ids:
                yield fact(ISSUE, issue_id, step, event.office, event.case_id)
        case LetterIssuedV1():
            yield fact(
                CASE,
                event.case_id,
                "letter_issued",
                event.office,
                None,
                event.number,
                department=event.department,
                deadline=event.deadline.isoformat(),
            )
        case CaseReopenedV1():
            yield fact(
                CASE,
                event.case_id,
                "case_reopened",
                event.office,
                None,
                event.reason,
                deadline=event.deadline.isoformat(),
            )
        case (
            CaseAcknowledgedV1()
            | ProgressReportedV1()
            | FollowUpRecordedV1()
            | CompletionReportedV1()
            | CaseEscalatedV1()
        ):
            yield fact(CASE, event.case_id, CASE_STEPS[type(event)], event.office)


CASE_STEPS: dict[type[Contract], str] = {
    CaseAcknowledgedV1: "acknowledged",
    ProgressReportedV1: "progress_reported",
    FollowUpRecordedV1: "follow_up_recorded",
    CompletionReportedV1: "completion_reported",
    CaseEscalatedV1: "case_escalated",
}
CASE_RANK = {
    "case_opened": 0,
    "letter_issued": 1,
    "acknowledged": 2,
    "progress_reported": 3,
    "follow_up_recorded": 3,
    "case_escalated": 3,
    "completion_reported": 4,
    "case_overdue": 5,
    "case_reopened": 6,
    "case_verified": 7,
}
CASE_STATUS = {
    "case_opened": "opened",
    "letter_issued": "letter_issued",
    "acknowledged": "acknowledged",
    "progress_reported": "in_progress",
    "follow_up_recorded": "in_progress",
    "case_escalated": "in_progress",
    "completion_reported": "completed",
    "case_reopened": "reopened",
    "case_verified": "verified",
}


# --- what is derived ------------------------------------------------------------------------

Contribution = tuple[str, int, str]
"""(office, year, figure): one unit an entity adds to a yearly counter."""


@dataclass
class Derived:
    """An entity's derived row (None while it is not known enough to list), its counters."""

    row: dict[str, Any] | None
    counts: dict[Contribution, int] = field(default_factory=dict)
    days: dict[tuple[str, int, int], int] = field(default_factory=dict)
    """(office, year, days) → issues resolved in that year after that many days."""
    links: list[str] = field(default_factory=list)
    """Departments of an issue, offices of a meeting, issues of a case (for filters)."""

    def add(self, office: str, year: int, figure: str, n: int = 1) -> None:
        for key in ((office, year, figure), (TOTAL, year, figure)):
            self.counts[key] = self.counts.get(key, 0) + n


def in_order(facts: Iterable[Fact], rank: dict[str, int], until: str | None) -> list[Fact]:
    """The facts that happened by `until`, by when they happened; ties by lifecycle."""
    kept = (f for f in facts if until is None or f.at <= until)
    return sorted(kept, key=lambda f: (f.at, rank.get(f.step, 0), f.event_id))


def days_between(start: str, end: str) -> int:
    """Whole calendar days in China between two fixed-width China times."""
    return max(0, (datetime.fromisoformat(end[:10]) - datetime.fromisoformat(start[:10])).days)


def derive_issue(facts: Iterable[Fact], until: str | None = None) -> Derived:
    """An issue's combined status, row and counters from its facts, as of `until`.

    The status is the furthest step reached since the last reopening (重新打开 goes back to
    已收集): closed > resolved > overdue > under supervision > consulted > on the agenda >
    the latest screening decision > submitted.
    """
    ordered = in_order(facts, ISSUE_RANK, until)
    submitted = next((f for f in ordered if f.step == "submitted"), None)
    if submitted is None:
        return Derived(None)
    last_reopen = max((i for i, f in enumerate(ordered) if f.step == "reopened"), default=-1)
    epoch = ordered[last_reopen + 1 :]
    steps = {f.step for f in epoch}
    agenda: dict[str | None, bool] = {}
    screening: Fact | None = None
    for f in epoch:
        if f.step == "topic_added":
            agenda[f.ref_id] = True
        elif f.step in ("topic_removed", "meeting_cancelled"):
            agenda[f.ref_id] = False
        elif f.step == "screened":
            screening = f
    if "closed" in steps:
        status = "closed"
    elif "resolved" in steps:
        status = "resolved"
    elif "case_overdue" in steps:
        status = "overdue"
    elif "case_opened" in steps:
        status = "under_supervision"
    elif steps & {"meeting_held", "meeting_concluded"}:
        status = "consulted"
    elif any(agenda.values()):
        status = "on_agenda"
    elif screening is not None:
        status = SCREENING_STATUS[screening.detail or ""]
    else:
        status = "submitted"

    key_since = submitted.at if submitted.data.get("key_problem") else None
    if key_since is None:
        key_since = next(
            (f.at for f in ordered if f.step == "screened" and f.data.get("key_problem")), None
        )
    departments = sorted(
        {f.data["department"] for f in ordered if f.data.get("department")}  # type: ignore[misc]
    )
    office = submitted.office
    data = submitted.data
    row = {
        "issue_id": submitted.entity_id,
        "office": office,
        "title": data["title"],
        "category": data["category"],
        "community": data.get("community"),
        "liaison_station": data.get("liaison_station"),
        "source": data.get("source"),
        "key_problem": int(key_since is not None),
        "key_problem_since": key_since,
        "submitted_at": submitted.at,
        "year": submitted.year,
        "status": status,
        "departments": ",".join(departments),
        "updated_at": ordered[-1].at,
    }
    derived = Derived(row, links=departments)
    derived.add(office, submitted.year, "issues_collected")
    first_resolved: dict[int, str] = {}
    reported: set[int] = set()
    for f in ordered:
        if f.step == "resolved":
            first_resolved.setdefault(f.year, f.at)
        elif f.step == "screened" and f.detail == "report":
            reported.add(f.year)
    for year, at in first_resolved.items():
        derived.add(office, year, "issues_resolved")
        if key_since is not None:
            derived.add(office, year, "key_problems_resolved")
        days = days_between(submitted.at, at)
        for key in ((office, year, days), (TOTAL, year, days)):
            derived.days[key] = derived.days.get(key, 0) + 1
    for year in reported:
        derived.add(office, year, "reports_forwarded")
    return derived


def derive_activity(facts: Iterable[Fact], until: str | None = None) -> Derived:
    """An outreach activity (委员进基层活动): one 期, and its members after corrections (人次)."""
    kept = [f for f in facts if until is None or f.at <= until]
    recorded = next((f for f in kept if f.step == "activity_recorded"), None)
    if recorded is None:
        return Derived(None)
    # A correction replaces the list whenever it was typed in, even if dated oddly.
    latest = max(kept, key=lambda f: (f.step == "activity_corrected", f.at, f.event_id))
    members = int(latest.data["members"])
    row = {
        "activity_id": recorded.entity_id,
        "office": recorded.office,
        "held_at": recorded.at,
        "year": recorded.year,
        "community": recorded.data.get("community"),
        "liaison_station": recorded.data.get("liaison_station"),
        "activity_group": recorded.data.get("activity_group"),
        "members": members,
    }
    derived = Derived(row)
    derived.add(recorded.office, recorded.year, "outreach_activities")
    derived.add(recorded.office, recorded.year, "member_participations", members)
    return derived


MEETING_RANK = {
    "meeting_planned": 0,
    "meeting_postponed": 1,
    "topic_added": 2,
    "topic_removed": 3,
    "opinion_received": 4,
    "meeting_held": 5,
    "meeting_concluded": 6,
    "meeting_cancelled": 7,
}
MEETING_STATUS = {
    "meeting_planned": "planned",
    "meeting_postponed": "postponed",
    "meeting_held": "held",
    "meeting_concluded": "concluded",
    "meeting_cancelled": "cancelled",
}


def derive_meeting(facts: Iterable[Fact], until: str | None = None) -> Derived:
    """A consultation meeting (协商会议); a joint one counts for each office, once in total."""
    ordered = in_order(facts, MEETING_RANK, until)
    planned = next((f for f in ordered if f.step == "meeting_planned"), None)
    held = next((f for f in ordered if f.step == "meeting_held"), None)
    known = held or planned
    if known is None:
        return Derived(None)
    states = [f for f in ordered if f.step in MEETING_STATUS]
    offices: list[str] = list(known.data["offices"])
    agenda: dict[str | None, bool] = {}
    for f in ordered:
        if f.step in ("topic_added", "topic_removed"):
            agenda[f.ref_id] = f.step == "topic_added"
    row = {
        "meeting_id": known.entity_id,
        "office": offices[0],
        "offices": ",".join(offices),
        "kind": known.detail,
        "title": None if planned is None else planned.data["title"],
        "status": MEETING_STATUS[states[-1].step] if states else "planned",
        "held_at": None if held is None else held.at,
        "held_year": None if held is None else held.year,
        "agenda": ",".join(sorted(str(i) for i, on in agenda.items() if on)),
    }
    derived = Derived(row, links=offices)
    if held is not None:
        figure = f"meetings_{held.detail}"
        for office in offices:
            derived.counts[(office, held.year, figure)] = 1
        derived.counts[(TOTAL, held.year, figure)] = 1
    return derived


def derive_case(facts: Iterable[Fact], until: str | None = None) -> Derived:
    """A supervision case (督办件): its letters (督办函) and whether it went overdue (逾期)."""
    ordered = in_order(facts, CASE_RANK, until)
    opened = next((f for f in ordered if f.step == "case_opened"), None)
    derived = Derived(None)
    for f in ordered:
        if f.step == "letter_issued":
            derived.add(f.office, f.year, "letters_issued")
    overdue = next((f for f in ordered if f.step == "case_overdue"), None)
    if overdue is not None:
        derived.add(overdue.office, overdue.year, "cases_overdue")
    if opened is None:
        return derived
    deadlines = [f.data["deadline"] for f in ordered if f.data.get("deadline")]
    states = [f for f in ordered if f.step in CASE_STATUS]
    issues: list[str] = list(opened.data["issue_ids"])
    derived.row = {
        "case_id": opened.entity_id,
        "office": opened.office,
        "origin": opened.detail,
        "meeting_id": opened.ref_id,
        "department": opened.data["department"],
        "deadline": deadlines[-1],
        "opened_at": opened.at,
        "status": CASE_STATUS[states[-1].step],
        "overdue_at": None if overdue is None else overdue.at,
        "issue_ids": ",".join(issues),
    }
    derived.links = issues
    return derived


DERIVE = {
    ISSUE: derive_issue,
    ACTIVITY: derive_activity,
    MEETING: derive_meeting,
    CASE: derive_case,
}
