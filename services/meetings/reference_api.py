"""Meetings' reference data (基础资料) and calendar feeds (会议日历) over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from services.meetings.api import (
    IdempotencyKey,
    Meetings,
    PageNumber,
    PageSize,
    domain_errors,
    page_of,
)
from services.meetings.application import MeetingsApplication
from services.meetings.calendar import feed
from services.meetings.schemas import (
    DepartmentRegistration,
    Page,
    PersonRegistration,
    VenueRegistration,
)
from shared.auth import (
    Authenticator,
    CurrentPrincipal,
    Principal,
    Reader,
    TokenError,
    require_role,
)

router = APIRouter(tags=["reference data"])


def _created(response: Response, result: tuple[dict[str, Any], bool]) -> dict[str, Any]:
    item, created = result
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return item


def _office_to_read(app: MeetingsApplication, principal: Principal, office: str | None) -> str:
    wanted = office or principal.office
    if wanted not in app.known_offices or not principal.can_read(wanted):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这个政协的资料 / no such office")
    return wanted


@router.post("/people", status_code=status.HTTP_201_CREATED)
async def record_person(
    body: PersonRegistration,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Register or update a member (委员), an expert (专家团) or a department head."""
    require_role(principal, "meetings")
    with domain_errors():
        result = await app.record_person(
            principal.office,
            body.person_id,
            body.name,
            body.kind,
            body.department,
            idempotency_key=idempotency_key,
        )
    return _created(response, result)


@router.post("/venues", status_code=status.HTTP_201_CREATED)
async def record_venue(
    body: VenueRegistration,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Register a venue: a consultation hall (协商议事厅) or an on-site address."""
    require_role(principal, "meetings")
    with domain_errors():
        result = await app.record_venue(principal.office, body.name, body.address, idempotency_key)
    return _created(response, result)


@router.post("/departments", status_code=status.HTTP_201_CREATED)
async def record_department(
    body: DepartmentRegistration,
    principal: CurrentPrincipal,
    app: Meetings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Register a responsible department (承办单位)."""
    require_role(principal, "meetings")
    with domain_errors():
        result = await app.record_department(principal.office, body.name, idempotency_key)
    return _created(response, result)


@router.get("/people", response_model=Page)
async def list_people(
    principal: Reader,
    app: Meetings,
    office: str | None = None,
    kind: str | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> Page:
    """The office's members, experts and department heads."""
    roster = await run_in_threadpool(app.roster, _office_to_read(app, principal, office))
    people = [p for p in roster.people.values() if kind is None or p["kind"] == kind]
    return page_of(people, page, page_size)


@router.get("/venues", response_model=Page)
async def list_venues(
    principal: Reader,
    app: Meetings,
    office: str | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> Page:
    """The office's venues."""
    roster = await run_in_threadpool(app.roster, _office_to_read(app, principal, office))
    return page_of(list(roster.venues.values()), page, page_size)


@router.get("/departments", response_model=Page)
async def list_departments(
    principal: Reader,
    app: Meetings,
    office: str | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 200,
) -> Page:
    """The office's responsible departments."""
    roster = await run_in_threadpool(app.roster, _office_to_read(app, principal, office))
    return page_of(list(roster.departments.values()), page, page_size)


ICS = "text/calendar; charset=utf-8"
Token = Annotated[str | None, Query(min_length=1, description="只读令牌 / a viewer token")]
calendar_router = APIRouter(prefix="/calendar", tags=["calendar"])


def viewer(request: Request, token: str | None) -> Principal:
    """The token in a calendar URL is seen by calendar apps and proxies: only a read-only one,
    a calendar token (日历订阅令牌, long-lived) or a viewer token."""
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "需要访问令牌 / a token is required (?token=)"
        )
    authenticator: Authenticator = request.app.state.authenticator
    try:
        try:
            principal = authenticator.verify_calendar(token)
        except TokenError:
            principal = authenticator.verify(token)
    except TokenError as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"访问令牌无效 / invalid token: {error}"
        ) from error
    if principal.roles != {"viewer"}:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "日历链接只能使用只读令牌 / a calendar URL takes only a viewer token",
        )
    return principal


@calendar_router.get("/people/{person_id}.ics", response_class=Response)
async def person_calendar(
    person_id: str, request: Request, app: Meetings, token: Token = None
) -> Response:
    """The meetings a person is invited to and has not declined, as an iCalendar feed."""
    principal = viewer(request, token)
    found = await run_in_threadpool(
        app.meetings, principal.can_read, None, None, None, None, None, person_id
    )
    body = await run_in_threadpool(feed, f"协商会议 · {person_id}", found)
    return Response(body, media_type=ICS)


@calendar_router.get("/{office}.ics", response_class=Response)
async def office_calendar(
    office: str, request: Request, app: Meetings, token: Token = None
) -> Response:
    """An office's meetings (its own and those it holds jointly), as an iCalendar feed."""
    principal = viewer(request, token)
    if office not in app.known_offices or not principal.can_read(office):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这个政协 / no such office")
    found = await run_in_threadpool(app.meetings, principal.can_read, office)
    body = await run_in_threadpool(feed, f"{office} 协商会议", found)
    return Response(body, media_type=ICS)
