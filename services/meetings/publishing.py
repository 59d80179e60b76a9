"""What meetings publishes (事件发布): each stored meeting event as its versioned contract."""

from __future__ import annotations

from typing import Any

from services.meetings.domain import Meeting
from shared.contracts import (
    Attendee,
    Contract,
    MeetingCancelledV1,
    MeetingConcludedV1,
    MeetingHeldV1,
    MeetingPlannedV1,
    MeetingPostponedV1,
    OpinionReceivedV1,
    Outcome,
    TopicAddedV1,
    TopicRemovedV1,
)


def to_contract(domain_event: Any) -> tuple[str, Contract] | None:
    """The contract of a meeting event, under its organising office; None for the rest
    (reference data, topics and schedules stay inside the service)."""
    e = domain_event
    if isinstance(e, Meeting.Planned):
        return e.offices[0], MeetingPlannedV1(
            meeting_id=e.originator_id,
            offices=e.offices,
            kind=e.kind,
            title=e.title,
            theme=e.theme,
            starts_at=e.starts_at,
            ends_at=e.ends_at,
            venue=e.venue,
            submission_deadline=e.submission_deadline,
            planned_at=e.planned_at,
        )
    if isinstance(e, Meeting.TopicAdded):
        return e.offices[0], TopicAddedV1(
            meeting_id=e.originator_id,
            offices=e.offices,
            issue_id=e.issue_id,
            issue_office=e.issue_office,
            added_at=e.added_at,
            meeting_title=getattr(e, "meeting_title", None),
            starts_at=getattr(e, "starts_at", None),
        )
    if isinstance(e, Meeting.TopicRemoved):
        return e.offices[0], TopicRemovedV1(
            meeting_id=e.originator_id,
            offices=e.offices,
            issue_id=e.issue_id,
            issue_office=e.issue_office,
            removed_at=e.removed_at,
        )
    if isinstance(e, Meeting.Held):
        return e.offices[0], MeetingHeldV1(
            meeting_id=e.originator_id,
            offices=e.offices,
            kind=e.kind,
            held_at=e.held_at,
            attendance=[Attendee(**a) for a in e.attendance],
            issue_ids=e.issue_ids,
        )
    if isinstance(e, Meeting.OpinionReceived):
        return e.offices[0], OpinionReceivedV1(
            meeting_id=e.originator_id,
            offices=e.offices,
            participant=Attendee(**e.participant),
            opinion=e.opinion,
            received_at=e.received_at,
        )
    if isinstance(e, Meeting.Concluded):
        return e.offices[0], MeetingConcludedV1(
            meeting_id=e.originator_id,
            offices=e.offices,
            kind=e.kind,
            title=e.title,
            concluded_at=e.concluded_at,
            outcomes=[Outcome(**o) for o in e.outcomes],
        )
    if isinstance(e, Meeting.Cancelled):
        return e.offices[0], MeetingCancelledV1(
            meeting_id=e.originator_id,
            offices=e.offices,
            cancelled_at=e.cancelled_at,
            reason=e.reason,
            issue_ids=e.issue_ids,
        )
    if isinstance(e, Meeting.Postponed):
        return e.offices[0], MeetingPostponedV1(
            meeting_id=e.originator_id,
            offices=e.offices,
            starts_at=e.starts_at,
            ends_at=e.ends_at,
            submission_deadline=e.submission_deadline,
            postponed_at=e.postponed_at,
            reason=e.reason,
        )
    return None
