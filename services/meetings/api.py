"""Meetings' HTTP API: thin routes over the application."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from services.meetings.application import MeetingNotFound, MeetingsApplication
from services.meetings.domain import Meeting
from services.meetings.rules import MeetingConflict, MeetingRuleBroken
from services.meetings.schemas import (
    Cancellation,
    Closing,
    Conclusion,
    Holding,
    Invitation,
    MeetingPlan,
    MeetingView,
    Opinion,
    Page,
    Postponement,
    Reply,
    TopicAddition,
)
from shared.audit import History
from shared.auth import CurrentPrincipal, Principal, Reader, offices_to_read, require_role
from shared.web import IdempotencyKey, PageNumber, PageSize


async def meetings_app(request: Request) -> MeetingsApplication:
    return request.app.state.meetings


Meetings = Annotated[MeetingsApplication, Depends(meetings_app)]


@contextmanager
def domain_errors() -> Iterator[None]:
    """A broken rule is a 422 naming the field; a refused transition a 409 naming the state."""
    try:
        yield
    except MeetingRuleBroken as error:
        raise RequestValidationError(
            [{"loc": ("body", *error.field.split(".")), "msg": error.reason, "type": "value_error"}]
        ) from error
    except MeetingConflict as error:
        raise HTTPException(status.HTTP_409_CONFLICT, error.reason) from error


def page_of(items: list[Any], page: int, page_size: int) -> Page:
    start = (page - 1) * page_size
    return Page(
        items=items[start : start + page_size], total=len(items), page=page, page_size=page_size
    )


async def readable_meeting(
    app: MeetingsApplication, principal: Principal, meeting_id: UUID
) -> Meeting:
    try:
        meeting = await run_in_threadpool(app.get_meeting, meeting_id)
    except MeetingNotFound:
        meeting = None
    if meeting is None or not any(principal.can_read(o) for o in meeting.offices):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这个会议 / no such meeting")
    return meeting


async def writable_meeting(
    app: MeetingsApplication, principal: Principal, meeting_id: UUID
) -> Meeting:
    require_role(principal, "meetings")
    meeting = await readable_meeting(app, principal, meeting_id)
    if principal.office not in meeting.offices:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "只有举办会议的政协可以修改 / only the meeting's offices may change it",
        )
    return meeting


def answer(response: Response, result: tuple[Meeting, bool]) -> MeetingView:
    meeting, _ = result
    response.headers["Location"] = f"/meetings/{meeting.id}"
    return MeetingView.of(meeting)


router = APIRouter(prefix="/meetings", tags=["meetings"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MeetingView)
async def plan_meeting(
    body: MeetingPlan,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Plan a meeting (计划协商会议) organised by the caller's office, alone or jointly."""
    require_role(principal, "meetings")
    if body.office != principal.office:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "只能由本政协组织会议 / you can plan meetings only for your own office",
        )
    with domain_errors():
        result = await app.plan_meeting(
            body.office,
            body.joint_offices,
            body.kind,
            body.title,
            body.theme,
            body.starts_at,
            body.ends_at,
            body.venue,
            body.submission_deadline,
            body.planned_at,
            idempotency_key=idempotency_key,
        )
    if not result[1]:
        response.status_code = status.HTTP_200_OK
    return answer(response, result)


@router.get("", response_model=Page)
async def list_meetings(
    principal: Reader,
    app: Meetings,
    office: str | None = None,
    kind: Literal["thematic", "onsite", "written"] | None = None,
    status_: Annotated[
        Literal["planned", "held", "concluded", "cancelled"] | None, Query(alias="status")
    ] = None,
    date_from: date | None = None,
    date_to: date | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> Page:
    """Meetings of the caller's office (the prefecture's: of every office), by start time."""
    offices_to_read(principal, office)  # another county named → 404; the rest filters below
    found = await run_in_threadpool(
        app.meetings, principal.can_read, office, kind, status_, date_from, date_to
    )
    return page_of([MeetingView.of(m) for m in found], page, page_size)


@router.get("/{meeting_id}", response_model=MeetingView)
async def get_meeting(meeting_id: UUID, principal: Reader, app: Meetings) -> MeetingView:
    """One meeting with its agenda, participants, outcomes, postponements and history."""
    meeting = await readable_meeting(app, principal, meeting_id)
    return MeetingView.of(meeting, await run_in_threadpool(app.history, meeting_id))


@router.get("/{meeting_id}/history", response_model=History)
async def meeting_history(meeting_id: UUID, principal: Reader, app: Meetings) -> History:
    """Every event of a meeting in order, with who did it and when (审计记录)."""
    meeting = await readable_meeting(app, principal, meeting_id)
    entries = await run_in_threadpool(app.audit_trail, meeting_id)
    return History(id=meeting_id, office=meeting.offices[0], entries=entries)


@router.post("/{meeting_id}/topics", response_model=MeetingView)
async def add_topic(
    meeting_id: UUID,
    body: TopicAddition,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Put an issue intake screened as a topic on the agenda (列入协商议题)."""
    await writable_meeting(app, principal, meeting_id)
    with domain_errors():
        result = await app.add_topic(meeting_id, body.issue_id, body.added_at, idempotency_key)
    return answer(response, result)


@router.delete("/{meeting_id}/topics/{issue_id}", response_model=MeetingView)
async def remove_topic(
    meeting_id: UUID,
    issue_id: UUID,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Take an issue off the agenda (移出议题); it is free for another meeting."""
    await writable_meeting(app, principal, meeting_id)
    with domain_errors():
        result = await app.remove_topic(meeting_id, issue_id, None, idempotency_key)
    return answer(response, result)


@router.post("/{meeting_id}/invitations", response_model=MeetingView)
async def invite(
    meeting_id: UUID,
    body: Invitation,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Invite a member, an expert or a department head (邀请参会人员)."""
    await writable_meeting(app, principal, meeting_id)
    with domain_errors():
        result = await app.invite(meeting_id, body.person_id, body.role, idempotency_key)
    return answer(response, result)


@router.post("/{meeting_id}/invitations/{person_id}/reply", response_model=MeetingView)
async def reply(
    meeting_id: UUID,
    person_id: str,
    body: Reply,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Record an invitee's answer: confirmed (确认参加) or declined (请假)."""
    await writable_meeting(app, principal, meeting_id)
    with domain_errors():
        result = await app.reply(meeting_id, person_id, body.accepted, idempotency_key)
    return answer(response, result)


@router.post("/{meeting_id}/held", response_model=MeetingView)
async def hold(
    meeting_id: UUID,
    body: Holding,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Record that a thematic or on-site meeting was held, with who attended (召开)."""
    await writable_meeting(app, principal, meeting_id)
    with domain_errors():
        result = await app.hold(meeting_id, body.held_at, body.attendance, idempotency_key)
    return answer(response, result)


@router.post("/{meeting_id}/opinions", response_model=MeetingView)
async def receive_opinion(
    meeting_id: UUID,
    body: Opinion,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Record a written opinion of an invited participant (书面意见)."""
    await writable_meeting(app, principal, meeting_id)
    with domain_errors():
        result = await app.receive_opinion(
            meeting_id, body.person_id, body.opinion, body.received_at, idempotency_key
        )
    return answer(response, result)


@router.post("/{meeting_id}/close", response_model=MeetingView)
async def close(
    meeting_id: UUID,
    body: Closing,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Close a written consultation (结束意见征集); it counts as held."""
    await writable_meeting(app, principal, meeting_id)
    with domain_errors():
        result = await app.close_consultation(meeting_id, body.closed_at, idempotency_key)
    return answer(response, result)


@router.post("/{meeting_id}/conclusion", response_model=MeetingView)
async def conclude(
    meeting_id: UUID,
    body: Conclusion,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Conclude with outcomes (形成协商成果); each opens a supervision case."""
    await writable_meeting(app, principal, meeting_id)
    outcomes = [o.model_dump() for o in body.outcomes]
    with domain_errors():
        result = await app.conclude(meeting_id, body.concluded_at, outcomes, idempotency_key)
    return answer(response, result)


@router.post("/{meeting_id}/cancel", response_model=MeetingView)
async def cancel(
    meeting_id: UUID,
    body: Cancellation,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Cancel a planned meeting (取消); its topics, venue and people are free again."""
    await writable_meeting(app, principal, meeting_id)
    with domain_errors():
        result = await app.cancel(meeting_id, body.reason, body.cancelled_at, idempotency_key)
    return answer(response, result)


@router.post("/{meeting_id}/postpone", response_model=MeetingView)
async def postpone(
    meeting_id: UUID,
    body: Postponement,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> MeetingView:
    """Move a planned meeting to a new time window (延期); the old one stays in its history."""
    await writable_meeting(app, principal, meeting_id)
    with domain_errors():
        result = await app.postpone(
            meeting_id,
            body.starts_at,
            body.ends_at,
            body.submission_deadline,
            body.reason,
            body.postponed_at,
            idempotency_key,
        )
    return answer(response, result)
