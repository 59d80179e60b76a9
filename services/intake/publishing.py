"""What intake publishes (事件发布): each stored activity and issue event as its versioned
contract."""

from __future__ import annotations

from typing import Any

from services.intake.activity import OutreachActivity
from services.intake.domain import Issue
from shared.contracts import (
    ActivityCorrectedV1,
    ActivityRecordedV1,
    Contract,
    IssueCallbackRecordedV1,
    IssueClosedV1,
    IssueReopenedV1,
    IssueResolvedV1,
    IssueScreenedV1,
    IssueSubmittedV1,
)


def to_contract(domain_event: Any) -> tuple[str, Contract] | None:
    """The contract of an activity or issue event, under its office; None for the events
    that stay inside the service (Open311 keys, an issue's notes for its public timeline)."""
    e = domain_event
    contract: Contract
    if isinstance(e, OutreachActivity.Recorded):
        contract = ActivityRecordedV1(
            activity_id=e.originator_id,
            office=e.office,
            held_at=e.held_at,
            community=e.community,
            liaison_station=e.liaison_station,
            activity_group=e.activity_group,
            members=e.members,
            note=e.note,
        )
    elif isinstance(e, OutreachActivity.Corrected):
        contract = ActivityCorrectedV1(
            activity_id=e.originator_id,
            office=e.office,
            members=e.members,
            reason=e.reason,
            corrected_at=e.corrected_at,
        )
    elif isinstance(e, Issue.Submitted):
        # Never the reporter's name or phone: personal data stays in intake.
        contract = IssueSubmittedV1(
            issue_id=e.originator_id,
            office=e.office,
            title=e.title,
            description=e.description,
            category=e.category,
            submitted_at=e.submitted_at,
            community=getattr(e, "community", None),
            liaison_station=getattr(e, "liaison_station", None),
            source=getattr(e, "source", None),
            activity_id=getattr(e, "activity_id", None),
            recorded_by=getattr(e, "recorded_by", None),
            key_problem=getattr(e, "key_problem", False),
        )
    elif isinstance(e, Issue.Screened):
        contract = IssueScreenedV1(
            issue_id=e.originator_id,
            office=e.office,
            decision=e.decision,
            screened_at=e.screened_at,
            screened_by=e.screened_by,
            title=e.title,
            category=e.category,
            key_problem=e.key_problem,
            **e.details,
        )
    elif isinstance(e, Issue.Resolved):
        contract = IssueResolvedV1(
            issue_id=e.originator_id,
            office=e.office,
            resolved_at=e.resolved_at,
            via=e.via,
            case_id=e.case_id,
            original_id=e.original_id,
        )
    elif isinstance(e, Issue.Closed):
        contract = IssueClosedV1(issue_id=e.originator_id, office=e.office, closed_at=e.closed_at)
    elif isinstance(e, Issue.Reopened):
        contract = IssueReopenedV1(
            issue_id=e.originator_id, office=e.office, reopened_at=e.reopened_at, reason=e.reason
        )
    elif isinstance(e, Issue.CallbackRecorded):
        # The note is the office's own record of the call: not published.
        contract = IssueCallbackRecordedV1(
            issue_id=e.originator_id,
            office=e.office,
            reached=e.reached,
            satisfaction=e.satisfaction,
            called_at=e.called_at,
            reopened_cases=e.reopened_cases,
        )
    else:
        return None
    return e.office, contract
