"""Supervision's HTTP API: thin routes over the application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from services.supervision.application import CaseFilter, CaseNotFound, SupervisionApplication
from services.supervision.domain import CaseRuleBroken, IllegalTransition, SupervisionCase
from services.supervision.letters import render_letter
from services.supervision.schemas import (
    AcknowledgementRequest,
    CasePage,
    CaseView,
    FollowUpRequest,
    LetterRequest,
    LetterView,
    ReportRequest,
    SendBackRequest,
    VerificationRequest,
)
from shared.audit import History
from shared.auth import CurrentPrincipal, Principal, offices_to_read, require_any_role, require_role
from shared.clock import CalendarNotCovered
from shared.commands import KEY_REUSED, IdempotencyConflict, body_command
from shared.letters import DOCX_MEDIA_TYPE
from shared.web import IdempotencyKey


async def supervision(request: Request) -> SupervisionApplication:
    return request.app.state.supervision


Supervision = Annotated[SupervisionApplication, Depends(supervision)]

router = APIRouter(prefix="/cases", tags=["cases"])

NOT_FOUND = "没有这个督办件 / no such case"


def can_see(principal: Principal, case: SupervisionCase) -> bool:
    """The office sees its cases, the prefecture all; a department only its own."""
    if not principal.can_read(case.office):
        return False
    return "department" not in principal.roles or case.department == principal.department


def reader(principal: Principal) -> Callable[[SupervisionCase], None]:
    def guard(case: SupervisionCase) -> None:
        if not can_see(principal, case):
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)

    return guard


def office_writer(
    principal: Principal, roles: tuple[str, ...] = ("supervisor",)
) -> Callable[[SupervisionCase], None]:
    """The supervising office's own staff; the prefecture reads a county's cases but does not
    act on them."""
    require_any_role(principal, roles)
    see = reader(principal)

    def guard(case: SupervisionCase) -> None:
        see(case)
        if case.office != principal.office:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "只能督办本政协的督办件 / you can act only on your own office's cases",
            )

    return guard


VERIFIERS = ("supervisor", "leader")
"""Who accepts or sends back a department's work: the supervisors, or the office's leader."""


def department_writer(principal: Principal) -> Callable[[SupervisionCase], None]:
    require_role(principal, "department")
    return reader(principal)


def now_of(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


T = TypeVar("T")


async def answered(call: Awaitable[T]) -> T:
    """The application's refusals as HTTP answers: 404, 409 naming the state, 422 naming
    the field."""
    try:
        return await call
    except CaseNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND) from error
    except IllegalTransition as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    except IdempotencyConflict as error:
        raise HTTPException(status.HTTP_409_CONFLICT, KEY_REUSED) from error
    except CaseRuleBroken as error:
        raise RequestValidationError(
            [{"loc": ("body", error.field), "msg": error.reason, "type": "value_error"}]
        ) from error
    except CalendarNotCovered as error:
        raise RequestValidationError(
            [{"loc": ("body", "working_days"), "msg": str(error), "type": "value_error"}]
        ) from error


@router.get("", response_model=CasePage)
async def list_cases(
    principal: CurrentPrincipal,
    app: Supervision,
    office: str | None = None,
    department: str | None = None,
    status_: Annotated[str | None, Query(alias="status")] = None,
    issue_id: UUID | None = None,
    meeting_id: UUID | None = None,
    overdue: bool | None = None,
    sort: Literal["opened", "deadline"] = "opened",
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CasePage:
    """The cases the caller may see (督办件列表), filtered, oldest first or (`sort=deadline`)
    the open ones nearest their deadline first."""
    offices = offices_to_read(principal, office)
    if "department" in principal.roles:
        if department not in (None, principal.department):
            offices = frozenset()
        department = principal.department
    where = CaseFilter(offices, department, status_, issue_id, meeting_id, overdue)
    cases, total = await run_in_threadpool(app.list_cases, where, page, page_size, sort)
    return CasePage(
        items=[CaseView.of(c) for c in cases], total=total, page=page, page_size=page_size
    )


async def _visible_case(
    app: SupervisionApplication, principal: Principal, case_id: UUID
) -> SupervisionCase:
    try:
        case = await run_in_threadpool(app.get_case, case_id)
    except CaseNotFound:
        case = None
    if case is None or not can_see(principal, case):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return case


@router.get("/{case_id}", response_model=CaseView)
async def get_case(case_id: UUID, principal: CurrentPrincipal, app: Supervision) -> CaseView:
    """One case with its letters, reports, follow-ups and history."""
    return CaseView.of(await _visible_case(app, principal, case_id))


@router.get("/{case_id}/history", response_model=History)
async def case_history(case_id: UUID, principal: CurrentPrincipal, app: Supervision) -> History:
    """Every event of a case in order, with who did it and when (审计记录)."""
    case = await _visible_case(app, principal, case_id)
    entries = await run_in_threadpool(app.audit_trail, case_id)
    return History(id=case_id, office=case.office, entries=entries)


@router.get("/{case_id}/letters/{sequence}.docx", response_class=Response)
async def download_letter(
    case_id: UUID, sequence: int, principal: CurrentPrincipal, app: Supervision
) -> Response:
    """The printable letter (督办函, DOCX)."""
    case = await _visible_case(app, principal, case_id)
    letter = next((item for item in case.letters if item.sequence == sequence), None)
    if letter is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这份督办函 / no such letter")
    document = await run_in_threadpool(
        render_letter, case, letter, app.config.office_name(case.office)
    )
    filename = f"letter-{case.office}-{letter.year}-{letter.sequence}.docx"
    return Response(
        document,
        media_type=DOCX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("/{case_id}/letters", status_code=status.HTTP_201_CREATED, response_model=LetterView)
async def issue_letter(
    case_id: UUID,
    body: LetterRequest,
    principal: CurrentPrincipal,
    app: Supervision,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> LetterView:
    """Issue a supervision letter (发督办函) with the next number of the office's year."""
    guard = office_writer(principal)
    now = now_of(request)
    case, letter, created = await answered(
        app.issue_letter(
            case_id,
            body.requirements,
            body.deadline,
            body.working_days,
            body.issued_at or now,
            now,
            guard,
            body_command(idempotency_key, "letter", body),
        )
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/cases/{case.id}/letters/{letter.sequence}.docx"
    return LetterView.of(case, letter)


@router.post("/{case_id}/acknowledgement", response_model=CaseView)
async def acknowledge(
    case_id: UUID,
    body: AcknowledgementRequest,
    principal: CurrentPrincipal,
    app: Supervision,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CaseView:
    """The department signs for the letter (签收)."""
    guard = department_writer(principal)
    now = now_of(request)
    case = await answered(
        app.acknowledge(
            case_id,
            body.acknowledged_at or now,
            now,
            guard,
            body_command(idempotency_key, "acknowledgement", body),
        )
    )
    return CaseView.of(case)


@router.post("/{case_id}/progress", response_model=CaseView)
async def report_progress(
    case_id: UUID,
    body: ReportRequest,
    principal: CurrentPrincipal,
    app: Supervision,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CaseView:
    """The department reports its progress (报告办理进展)."""
    guard = department_writer(principal)
    now = now_of(request)
    case = await answered(
        app.report_progress(
            case_id,
            body.note,
            body.reported_at or now,
            now,
            guard,
            body_command(idempotency_key, "progress", body),
        )
    )
    return CaseView.of(case)


@router.post("/{case_id}/follow-ups", response_model=CaseView)
async def record_follow_up(
    case_id: UUID,
    body: FollowUpRequest,
    principal: CurrentPrincipal,
    app: Supervision,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CaseView:
    """The office records a follow-up (跟踪督办: 调研、视察、座谈) with the members who went."""
    guard = office_writer(principal)
    now = now_of(request)
    case = await answered(
        app.record_follow_up(
            case_id,
            body.kind,
            body.held_at,
            body.members,
            body.note,
            now,
            guard,
            body_command(idempotency_key, "follow-up", body),
        )
    )
    return CaseView.of(case)


@router.post("/{case_id}/completion", response_model=CaseView)
async def report_completion(
    case_id: UUID,
    body: ReportRequest,
    principal: CurrentPrincipal,
    app: Supervision,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CaseView:
    """The department reports the work done (报告办结)."""
    guard = department_writer(principal)
    now = now_of(request)
    case = await answered(
        app.report_completion(
            case_id,
            body.note,
            body.reported_at or now,
            now,
            guard,
            body_command(idempotency_key, "completion", body),
        )
    )
    return CaseView.of(case)


@router.post("/{case_id}/verification", response_model=CaseView)
async def verify(
    case_id: UUID,
    body: VerificationRequest,
    principal: CurrentPrincipal,
    app: Supervision,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CaseView:
    """The office accepts the department's work (验收); its issues become resolved."""
    guard = office_writer(principal, VERIFIERS)
    now = now_of(request)
    case = await answered(
        app.verify(
            case_id,
            body.verified_at or now,
            now,
            guard,
            body_command(idempotency_key, "verification", body),
        )
    )
    return CaseView.of(case)


@router.post("/{case_id}/send-back", response_model=CaseView)
async def send_back(
    case_id: UUID,
    body: SendBackRequest,
    principal: CurrentPrincipal,
    app: Supervision,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CaseView:
    """The office sends the work back (退回重办) with a reason and a new deadline."""
    guard = office_writer(principal, VERIFIERS)
    now = now_of(request)
    case = await answered(
        app.send_back(
            case_id,
            body.reason,
            body.deadline,
            body.reopened_at or now,
            now,
            guard,
            body_command(idempotency_key, "send-back", body),
        )
    )
    return CaseView.of(case)


scheduler_router = APIRouter(prefix="/scheduler", tags=["scheduler"])


class ScanResult(BaseModel):
    changed: int
    """Cases that got a reminder, 催办, overdue or 提级督办 step in this scan."""


@scheduler_router.post("/scan", response_model=ScanResult)
async def scan_now(principal: CurrentPrincipal, request: Request) -> ScanResult:
    """Run the deadline scan now (立即检查时限), instead of waiting for the next one.

    For an office that has just typed in its paper records: their deadlines are judged at
    once and together, not whenever the periodic scan happens to fall mid-entry.
    """
    require_role(principal, "supervisor")
    return ScanResult(changed=await request.app.state.scheduler.scan())
