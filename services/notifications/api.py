"""The notifications HTTP API: the recipients directory, the in-app inbox, the deliveries and
their dead letters. Thin: parse, call the application, map errors."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel

from services.notifications.application import (
    NotificationsApplication,
    NotInInbox,
    UnknownRecipient,
)
from services.notifications.schemas import (
    DeliverySummary,
    DeliveryView,
    InboxNotice,
    Listed,
    Notification,
    Recipient,
    RecipientBody,
    ResendBody,
    Resent,
    Status,
    Unread,
    check_key,
    office_of,
)
from shared.auth import CurrentPrincipal, Principal, Reader, offices_to_read, require_role
from shared.web import PageNumber, PageSize

router = APIRouter()
NO_RECIPIENT = "通讯录中没有这个收件人 / no such recipient in the directory"
NOT_IN_INBOX = "收件箱中没有这条通知 / no such notice in your inbox"


def _app(request: Request) -> NotificationsApplication:
    app: NotificationsApplication = request.app.state.application
    return app


def _key(principal: Principal, key: str) -> str:
    require_role(principal, "admin")
    try:
        check_key(key)
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"key: {error}") from error
    office = office_of(key)
    if office is not None and not principal.can_read(office):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_RECIPIENT)
    return key


def _offices(principal: Principal) -> list[str] | None:
    """A county office's admin sees and re-sends its own office's deliveries only."""
    offices = offices_to_read(principal, None)
    return None if offices is None else sorted(offices)


Key = Annotated[str, Path(max_length=300)]


@router.put("/recipients/{key}", response_model=Recipient, tags=["directory"])
async def put_recipient(
    request: Request, principal: CurrentPrincipal, key: Key, body: RecipientBody
) -> Recipient:
    """Set a directory entry's addresses and robots (设置收件人)."""
    key = _key(principal, key)
    saved = await asyncio.to_thread(
        _app(request).put_recipient,
        key,
        body.name,
        body.emails,
        [robot.model_dump() for robot in body.robots],
        body.users,
    )
    return Recipient.model_validate(saved)


@router.get("/recipients/{key}", response_model=Recipient, tags=["directory"])
async def get_recipient(request: Request, principal: CurrentPrincipal, key: Key) -> Recipient:
    """One directory entry (收件人)."""
    key = _key(principal, key)
    try:
        return Recipient.model_validate(await asyncio.to_thread(_app(request).recipient, key))
    except UnknownRecipient as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_RECIPIENT) from error


@router.delete("/recipients/{key}", status_code=204, tags=["directory"])
async def delete_recipient(request: Request, principal: CurrentPrincipal, key: Key) -> Response:
    """Remove a directory entry (删除收件人)."""
    key = _key(principal, key)
    try:
        await asyncio.to_thread(_app(request).delete_recipient, key)
    except UnknownRecipient as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_RECIPIENT) from error
    return Response(status_code=204)


@router.get("/recipients", response_model=list[Recipient], tags=["directory"])
async def list_recipients(request: Request, principal: CurrentPrincipal) -> list[Recipient]:
    """The directory (通讯录): every entry the caller's office may see."""
    require_role(principal, "admin")
    found = await asyncio.to_thread(_app(request).recipients, None)
    return [
        Recipient.model_validate(r)
        for r in found
        if (office := office_of(r["key"])) is None or principal.can_read(office)
    ]


def _listed(
    found: tuple[list[dict[str, Any]], int], model: type[BaseModel], page: int, page_size: int
) -> dict[str, Any]:
    rows, total = found
    items = [model.model_validate(r) for r in rows]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


@router.get("/inbox", response_model=Listed[InboxNotice], tags=["inbox"])
async def inbox(
    request: Request,
    principal: CurrentPrincipal,
    unread: bool = False,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> dict[str, Any]:
    """The caller's own in-app inbox (站内通知), newest first; `unread=true`: the unread only."""
    found = await asyncio.to_thread(
        _app(request).inbox, principal.subject, page_size, (page - 1) * page_size, unread
    )
    return _listed(found, InboxNotice, page, page_size)


@router.get("/inbox/unread", response_model=Unread, tags=["inbox"])
async def unread_count(request: Request, principal: CurrentPrincipal) -> Unread:
    """How many of the caller's notices are unread (未读数)."""
    return Unread(unread=await asyncio.to_thread(_app(request).unread, principal.subject))


@router.post("/inbox/{notice_id}/read", status_code=204, tags=["inbox"])
async def mark_read(request: Request, principal: CurrentPrincipal, notice_id: UUID) -> Response:
    """Mark one of the caller's notices read (标为已读); again changes nothing."""
    try:
        await asyncio.to_thread(_app(request).mark_read, principal.subject, str(notice_id))
    except NotInInbox as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_IN_INBOX) from error
    return Response(status_code=204)


@router.get("/notifications", response_model=Listed[Notification], tags=["notifications"])
async def notifications(
    request: Request,
    reader: Reader,
    office: str | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> dict[str, Any]:
    """Every notice made, oldest first (通知记录)."""
    offices = offices_to_read(reader, office)
    found = await asyncio.to_thread(
        _app(request).notices,
        None if offices is None else sorted(offices),
        page_size,
        (page - 1) * page_size,
    )
    return _listed(found, Notification, page, page_size)


@router.get("/deliveries", response_model=Listed[DeliveryView], tags=["deliveries"])
async def deliveries(
    request: Request,
    principal: CurrentPrincipal,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> dict[str, Any]:
    """Deliveries by email and robot with their state (送达记录)."""
    require_role(principal, "admin")
    found = await asyncio.to_thread(
        _app(request).deliveries, status_, _offices(principal), page_size, (page - 1) * page_size
    )
    return _listed(found, DeliveryView, page, page_size)


@router.get("/deliveries/summary", response_model=DeliverySummary, tags=["deliveries"])
async def deliveries_summary(request: Request, principal: CurrentPrincipal) -> DeliverySummary:
    """How many deliveries wait, are in flight, were sent, and whether all is settled (送达概况)."""
    require_role(principal, "admin")
    return DeliverySummary.model_validate(await _app(request).summary(_offices(principal)))


@router.get("/dead-letters", response_model=Listed[DeliveryView], tags=["deliveries"])
async def dead_letters(
    request: Request, principal: CurrentPrincipal, page: PageNumber = 1, page_size: PageSize = 50
) -> dict[str, Any]:
    """Deliveries that failed every attempt (死信), to be sent again by `resend`."""
    require_role(principal, "admin")
    found = await asyncio.to_thread(
        _app(request).deliveries, "dead", _offices(principal), page_size, (page - 1) * page_size
    )
    return _listed(found, DeliveryView, page, page_size)


@router.post("/dead-letters/resend", response_model=Resent, tags=["deliveries"])
async def resend(request: Request, principal: CurrentPrincipal, body: ResendBody) -> Resent:
    """Send dead letters again (重新发送): those named, or all."""
    require_role(principal, "admin")
    if not body.all and not body.ids:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            "ids: 请给出要重发的送达记录，或 all: true / name the deliveries, or all: true",
        )
    count = await asyncio.to_thread(
        _app(request).resend, None if body.all else body.ids, _offices(principal)
    )
    return Resent(resent=count)
