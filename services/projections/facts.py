"""Facts (事实) the read side keeps, one or more per published event: pure, no I/O.

Every published event becomes one or more facts, each keyed by the entity it is about (an
issue, an outreach activity, a meeting, a supervision case) and by the event's id. Whatever
the read side shows is derived from an entity's set of facts (derive.py), so the three
streams may interleave in any order, and a re-published event (same id) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from shared.clock import china_time
from shared.consumer import Delivered
from shared.contracts import (
    ActivityCorrectedV1,
    ActivityRecordedV1,
    CaseAcknowledgedV1,
    CaseEscalatedV1,
    CaseOpenedV1,
    CaseOverdueV1,
    CaseReopenedV1,
    CaseStepsRetractedV1,
    CaseVerifiedV1,
    CompletionReportedV1,
    Contract,
    FollowUpRecordedV1,
    IssueCallbackRecordedV1,
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

TOTAL = "*"
"""The office key of the all-offices counters (a joint meeting counts once there)."""

ISSUE, ACTIVITY, MEETING, CASE = "issue", "activity", "meeting", "case"


def china_year(moment: datetime) -> int:
    """The calendar year in China Standard Time: the year an event counts in."""
    return china_time(moment).year


def fact_time(moment: datetime) -> str:
    """A moment as the facts keep it: fixed-width China Standard Time text, which sorts as
    the moments it names."""
    return china_time(moment).isoformat(timespec="microseconds")


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
    "callback": "回访 / follow-up call",
    "case_escalated": "督办升级 / escalated",
    "case_steps_retracted": "撤销督办提醒 / deadline steps retracted",
}


def ladder_key(step: str, at: str) -> str:
    """Names a deadline step of a case by what it was and when: `overdue@<China time>`."""
    return f"{step}@{at}"


def retracted_key(f: Fact) -> str | None:
    """The key a retraction names this fact by, if it is a deadline step at all."""
    if f.step == "case_overdue":
        return ladder_key("overdue", f.at)
    if f.step == "case_escalated" and f.detail is not None:
        return ladder_key(f.detail, f.at)
    return None


def facts_of(stream: str, message: Delivered) -> Iterator[Fact]:
    """The facts one message adds; nothing for an event the read side does not use."""
    event = message.contract
    if event is None:
        return
    at = china_time(event.occurred_at)  # once: the text and the year are both China's
    base = (message.envelope.id, stream, fact_time(at), at.year)
    actor = message.envelope.actor
    # Who took the step, for the timeline; events published before auditing name no one.
    by = None if actor is None else {"subject": actor.subject, "role": actor.role}

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
        if by is not None:
            data["by"] = by
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
        case IssueCallbackRecordedV1():
            yield fact(
                ISSUE,
                event.issue_id,
                "callback",
                event.office,
                None,
                event.satisfaction or "unreached",
                reopened_cases=[str(c) for c in event.reopened_cases],
            )
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
                starts_at=fact_time(event.starts_at),
            )
        case MeetingPostponedV1():
            yield fact(
                MEETING,
                event.meeting_id,
                "meeting_postponed",
                event.offices[0],
                starts_at=fact_time(event.starts_at),
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
                cause=event.cause,
            )
        case CaseEscalatedV1():
            yield fact(CASE, event.case_id, "case_escalated", event.office, None, event.step)
        case CaseStepsRetractedV1():
            keys = [ladder_key(s.step, fact_time(s.at)) for s in event.steps]
            names = ",".join(s.step for s in event.steps)
            step = "case_steps_retracted"
            yield fact(CASE, event.case_id, step, event.office, None, names, retracted=keys)
            for issue_id in event.issue_ids:
                yield fact(
                    ISSUE, issue_id, step, event.office, event.case_id, names, retracted=keys
                )
        case (
            CaseAcknowledgedV1()
            | ProgressReportedV1()
            | FollowUpRecordedV1()
            | CompletionReportedV1()
        ):
            yield fact(CASE, event.case_id, CASE_STEPS[type(event)], event.office)


CASE_STEPS: dict[type[Contract], str] = {
    CaseAcknowledgedV1: "acknowledged",
    ProgressReportedV1: "progress_reported",
    FollowUpRecordedV1: "follow_up_recorded",
    CompletionReportedV1: "completion_reported",
}


def timeline_step(f: Fact) -> dict[str, Any]:
    """One step of an issue's timeline: when, what, and which meeting, case or letter."""
    meeting_id = f.ref_id if f.entity == ISSUE and f.step.startswith(("topic", "meeting")) else None
    case_id = f.entity_id if f.entity == CASE else None
    if f.entity == ISSUE and f.step.startswith("case_"):
        case_id = f.ref_id
    if f.step == "resolved":
        case_id = f.ref_id
    return {
        "at": f.at,
        "step": f.step,
        "label": STEP_LABELS.get(f.step, f.step),
        "stream": f.stream,
        "event_id": f.event_id,
        "meeting_id": meeting_id,
        "case_id": case_id,
        "letter_number": f.detail if f.step == "letter_issued" else None,
        "detail": None if f.step == "letter_issued" else f.detail,
        "department": f.data.get("department"),
        "by": f.data.get("by"),
    }
