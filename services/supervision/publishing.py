"""What supervision publishes (事件发布): each stored case event as its versioned contract."""

from __future__ import annotations

from typing import Any

from services.supervision.domain import SupervisionCase
from shared.contracts import (
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
    LetterIssuedV1,
    ProgressReportedV1,
    RetractedStep,
)


def to_contract(domain_event: Any) -> tuple[str, Contract] | None:
    """The contract of a case event, under its office; None for the rest (the letter
    registers and the requests a case remembers stay inside the service)."""
    e = domain_event
    if isinstance(e, SupervisionCase.Opened):
        return e.office, CaseOpenedV1(
            case_id=e.originator_id,
            office=e.office,
            origin=e.origin,
            meeting_id=e.meeting_id,
            outcome_id=e.outcome_id,
            issue_ids=e.issue_ids,
            department=e.department,
            deadline=e.deadline,
            requirements=e.requirements,
            opened_at=e.opened_at,
            # Cases opened before the meeting's title was kept have no such attribute.
            meeting_title=getattr(e, "meeting_title", None),
        )
    contract: Contract
    if isinstance(e, SupervisionCase.LetterIssued):
        contract = LetterIssuedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            number=e.number,
            year=e.year,
            sequence=e.sequence,
            deadline=e.deadline,
            requirements=e.requirements,
            issued_at=e.issued_at,
        )
    elif isinstance(e, SupervisionCase.Acknowledged):
        contract = CaseAcknowledgedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            acknowledged_at=e.acknowledged_at,
        )
    elif isinstance(e, SupervisionCase.ProgressReported):
        contract = ProgressReportedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            note=e.note,
            reported_at=e.reported_at,
        )
    elif isinstance(e, SupervisionCase.FollowUpRecorded):
        contract = FollowUpRecordedV1(
            case_id=e.originator_id,
            office=e.office,
            kind=e.kind,
            held_at=e.held_at,
            members=e.members,
            note=e.note,
        )
    elif isinstance(e, SupervisionCase.CompletionReported):
        contract = CompletionReportedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            note=e.note,
            reported_at=e.reported_at,
        )
    elif isinstance(e, SupervisionCase.Verified):
        contract = CaseVerifiedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            issue_ids=e.issue_ids,
            verified_at=e.verified_at,
        )
    elif isinstance(e, SupervisionCase.Reopened):
        contract = CaseReopenedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            reason=e.reason,
            deadline=e.deadline,
            reopened_at=e.reopened_at,
            cause=getattr(e, "cause", "office"),
        )
    elif isinstance(e, SupervisionCase.BecameOverdue):
        contract = CaseOverdueV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            deadline=e.deadline,
            issue_ids=e.issue_ids,
            overdue_at=e.overdue_at,
        )
    elif isinstance(e, SupervisionCase.Escalated):
        contract = CaseEscalatedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            step=e.step,
            to_office=e.to_office,
            escalated_at=e.escalated_at,
            deadline=e.deadline,
        )
    elif isinstance(e, SupervisionCase.StepsRetracted):
        contract = CaseStepsRetractedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            issue_ids=e.issue_ids,
            steps=[RetractedStep(step=step, deadline=d, at=at) for step, d, at in e.steps],
            retracted_at=e.retracted_at,
        )
    else:
        return None
    return e.office, contract
