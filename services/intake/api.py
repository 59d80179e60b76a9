"""Intake's HTTP API: thin routes over the application."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    File,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.intake.activity import OutreachActivity
from services.intake.application import ActivityNotFound, IntakeApplication, IssueNotFound
from services.intake.catalog import ActivityFilter, IssueFilter, Page
from services.intake.domain import (
    Issue,
    Status,
)
from services.intake.imports import ImportRefused, Kind, template
from services.intake.rules import IssueRuleBroken, TransitionRefused
from services.intake.schemas import (
    ActivityCorrection,
    ActivityDetail,
    ActivityPage,
    ActivityRecord,
    ActivityView,
    CallbackRecord,
    Closing,
    DueCallback,
    DueCallbacks,
    ImportAnswer,
    IssueDetail,
    IssuePage,
    IssueSubmission,
    IssueView,
    Moment,
    Reopening,
    RowProblem,
    Screening,
)
from shared.audit import History
from shared.auth import CurrentPrincipal, Principal, Reader, offices_to_read, require_role
from shared.commands import KEY_REUSED, IdempotencyConflict
from shared.web import IdempotencyKey, PageNumber, PageSize

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


# Dependencies are `async def` because FastAPI runs a plain `def` one in the thread pool:
# a round trip per request for what is only an attribute look-up.
async def intake(request: Request) -> IntakeApplication:
    return request.app.state.intake


Intake = Annotated[IntakeApplication, Depends(intake)]

router = APIRouter()


def _own_office(principal: Principal, office: str, doing: str) -> None:
    if office != principal.office:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"只能为本政协{doing} / you can do this only for your own office",
        )


def _shows_reporter(principal: Principal, issue: Issue) -> bool:
    return principal.office == issue.office and bool({"clerk", "leader"} & principal.roles)


_NO_ISSUE = "没有这个问题 / no such issue"
_NO_ACTIVITY = "没有这个活动 / no such activity"


async def _issue_for(app: IntakeApplication, principal: Principal, issue_id: UUID) -> Issue:
    """The issue if the caller may see it; 404 alike for another office's and a missing one."""
    try:
        issue = await run_in_threadpool(app.get_issue, issue_id)
    except IssueNotFound:
        issue = None
    if issue is None or not principal.can_read(issue.office):
        raise HTTPException(status.HTTP_404_NOT_FOUND, _NO_ISSUE)
    return issue


async def _activity_for(
    app: IntakeApplication, principal: Principal, activity_id: UUID
) -> OutreachActivity:
    try:
        activity = await run_in_threadpool(app.get_activity, activity_id)
    except ActivityNotFound:
        activity = None
    if activity is None or not principal.can_read(activity.office):
        raise HTTPException(status.HTTP_404_NOT_FOUND, _NO_ACTIVITY)
    return activity


# --- activities ---------------------------------------------------------------------------


@router.post(
    "/activities",
    status_code=status.HTTP_201_CREATED,
    response_model=ActivityView,
    tags=["activities"],
)
async def record_activity(
    body: ActivityRecord,
    principal: CurrentPrincipal,
    app: Intake,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ActivityView:
    """Record an outreach activity (委员进基层活动) for the caller's own office."""
    require_role(principal, "clerk")
    _own_office(principal, body.office, "登记活动")
    activity, created = await app.record_activity(
        body.office,
        body.held_at,
        body.members,
        community=body.community,
        liaison_station=body.liaison_station,
        activity_group=body.activity_group,
        note=body.note,
        idempotency_key=idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/activities/{activity.id}"
    return ActivityView.of(activity)


@router.post(
    "/activities/{activity_id}/corrections", response_model=ActivityView, tags=["activities"]
)
async def correct_activity(
    activity_id: UUID,
    body: ActivityCorrection,
    principal: CurrentPrincipal,
    app: Intake,
    idempotency_key: IdempotencyKey = None,
) -> ActivityView:
    """Correct the members present (更正参加委员): the full new list and a reason."""
    require_role(principal, "clerk")
    activity = await _activity_for(app, principal, activity_id)
    _own_office(principal, activity.office, "更正活动")
    corrected = await app.correct_activity(
        activity_id, body.members, body.reason, body.corrected_at, idempotency_key
    )
    return ActivityView.of(corrected)


@router.get("/activities", response_model=ActivityPage, tags=["activities"])
async def list_activities(
    principal: Reader,
    app: Intake,
    office: str | None = None,
    community: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> ActivityPage:
    """Outreach activities, newest first; `community` matches a community or a station."""
    where = ActivityFilter(offices_to_read(principal, office), community, date_from, date_to)
    found: Page = await run_in_threadpool(app.list_activities, where, page, page_size)
    return ActivityPage(
        items=[ActivityView.of(a) for a in found.items],
        total=found.total,
        page=found.page,
        page_size=found.page_size,
    )


@router.get("/activities/{activity_id}/history", response_model=History, tags=["activities"])
async def activity_history(activity_id: UUID, principal: Reader, app: Intake) -> History:
    """Every event of an activity in order, with who did it and when (审计记录)."""
    activity = await _activity_for(app, principal, activity_id)
    entries = await run_in_threadpool(app.audit_trail, activity_id, False)
    return History(id=activity_id, office=activity.office, entries=entries)


@router.get("/activities/{activity_id}", response_model=ActivityDetail, tags=["activities"])
async def get_activity(activity_id: UUID, principal: Reader, app: Intake) -> ActivityDetail:
    """One outreach activity with its history (corrections included)."""
    activity = await _activity_for(app, principal, activity_id)
    history = await run_in_threadpool(app.history, activity_id)
    return ActivityDetail(**ActivityView.of(activity).model_dump(), history=history)


# --- issues -------------------------------------------------------------------------------


def issue_view(app: IntakeApplication, principal: Principal, issue: Issue) -> IssueView:
    """An issue as this caller may see it: the reporter and tracking code to its own office."""
    return IssueView.of(issue, _shows_reporter(principal, issue), app.tracking_code(issue))


async def submitted(
    app: IntakeApplication, body: IssueSubmission, idempotency_key: str | None = None
) -> tuple[Issue, bool]:
    """The submission recorded (the route's and services/intake/hot.py's one call)."""
    return await app.submit_issue(
        body.office,
        body.title,
        body.description,
        body.category,
        body.submitted_at,
        idempotency_key=idempotency_key,
        community=body.community,
        liaison_station=body.liaison_station,
        source=body.source,
        activity_id=body.activity_id,
        recorded_by=body.recorded_by,
        key_problem=body.key_problem,
        reporter_name=body.reporter_name,
        reporter_phone=body.reporter_phone,
    )


@router.post(
    "/issues", status_code=status.HTTP_201_CREATED, response_model=IssueView, tags=["issues"]
)
async def submit_issue(
    body: IssueSubmission,
    principal: CurrentPrincipal,
    app: Intake,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> IssueView:
    """Record an issue (收集问题和建议) for the caller's own office."""
    require_role(principal, "clerk")
    _own_office(principal, body.office, "登记问题")
    issue, created = await submitted(app, body, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/issues/{issue.id}"
    return issue_view(app, principal, issue)


@router.post("/issues/{issue_id}/screening", response_model=IssueView, tags=["issues"])
async def screen_issue(
    issue_id: UUID,
    body: Screening,
    principal: CurrentPrincipal,
    app: Intake,
    idempotency_key: IdempotencyKey = None,
) -> IssueView:
    """Screen an issue (筛选议题): topic, report, refer, answered, duplicate or rejected."""
    require_role(principal, "leader")
    issue = await _issue_for(app, principal, issue_id)
    _own_office(principal, issue.office, "筛选议题")
    screened = await app.screen_issue(
        issue_id,
        body.decision,
        principal.subject,
        screened_at=body.screened_at,
        report_title=body.report_title,
        department=body.department,
        deadline=body.deadline,
        answer=body.answer,
        duplicate_of=body.duplicate_of,
        reason=body.reason,
        key_problem=body.key_problem,
        idempotency_key=idempotency_key,
    )
    return IssueView.of(screened, _shows_reporter(principal, screened))


@router.post("/issues/{issue_id}/close", response_model=IssueView, tags=["issues"])
async def close_issue(
    issue_id: UUID,
    principal: CurrentPrincipal,
    app: Intake,
    body: Closing | None = None,
    idempotency_key: IdempotencyKey = None,
) -> IssueView:
    """Close a resolved issue (办结归档)."""
    require_role(principal, "leader")
    issue = await _issue_for(app, principal, issue_id)
    _own_office(principal, issue.office, "办结问题")
    closed = await app.close_issue(
        issue_id, None if body is None else body.closed_at, idempotency_key
    )
    return IssueView.of(closed, _shows_reporter(principal, closed))


@router.post("/issues/{issue_id}/reopen", response_model=IssueView, tags=["issues"])
async def reopen_issue(
    issue_id: UUID,
    body: Reopening,
    principal: CurrentPrincipal,
    app: Intake,
    idempotency_key: IdempotencyKey = None,
) -> IssueView:
    """Reopen a closed issue with a reason (重新打开): it awaits screening again."""
    require_role(principal, "leader")
    issue = await _issue_for(app, principal, issue_id)
    _own_office(principal, issue.office, "重新打开问题")
    reopened = await app.reopen_issue(issue_id, body.reason, body.reopened_at, idempotency_key)
    return IssueView.of(reopened, _shows_reporter(principal, reopened))


@router.get("/issues", response_model=IssuePage, tags=["issues"])
async def list_issues(
    principal: Reader,
    app: Intake,
    office: str | None = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    category: str | None = None,
    community: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    key_problem: bool | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    page: PageNumber = 1,
    page_size: PageSize = 50,
) -> IssuePage:
    """Issues, newest first; dates are days of `submitted_at` in China Standard Time; `q`
    keeps those whose title holds it (the picker of a duplicate's original)."""
    where = IssueFilter(
        offices_to_read(principal, office),
        status_,
        category,
        community,
        date_from,
        date_to,
        key_problem,
        (q or "").strip() or None,
    )
    found: Page = await run_in_threadpool(app.list_issues, where, page, page_size)
    return IssuePage(
        items=[IssueView.of(i, _shows_reporter(principal, i)) for i in found.items],
        total=found.total,
        page=found.page,
        page_size=found.page_size,
    )


@router.get("/issues/{issue_id}/history", response_model=History, tags=["issues"])
async def issue_history(issue_id: UUID, principal: Reader, app: Intake) -> History:
    """Every event of an issue in order, with who did it and when (审计记录); the reporter
    only for its own office's clerk or leader."""
    issue = await _issue_for(app, principal, issue_id)
    personal = _shows_reporter(principal, issue)
    entries = await run_in_threadpool(app.audit_trail, issue_id, personal)
    return History(id=issue_id, office=issue.office, entries=entries)


@router.get("/issues/{issue_id}", response_model=IssueDetail, tags=["issues"])
async def get_issue(issue_id: UUID, principal: Reader, app: Intake) -> IssueDetail:
    """One issue with its history; the reporter only for its own office's clerk or leader."""
    issue = await _issue_for(app, principal, issue_id)
    history = await run_in_threadpool(app.history, issue_id)
    view = issue_view(app, principal, issue)
    return IssueDetail(**view.model_dump(), history=history)


@router.post("/issues/{issue_id}/callbacks", response_model=IssueView, tags=["callbacks"])
async def record_callback(
    issue_id: UUID,
    body: CallbackRecord,
    principal: CurrentPrincipal,
    app: Intake,
    idempotency_key: IdempotencyKey = None,
) -> IssueView:
    """Record a follow-up call with the resident (回访) after the issue was resolved;
    `unsatisfied` reopens the issue and sends its supervision cases back."""
    require_role(principal, "clerk")
    issue = await _issue_for(app, principal, issue_id)
    _own_office(principal, issue.office, "回访")
    called = await app.record_callback(
        issue_id,
        body.reached,
        body.satisfaction,
        body.note,
        principal.subject,
        body.called_at,
        idempotency_key,
    )
    return IssueView.of(called, _shows_reporter(principal, called))


@router.get("/callbacks/due", response_model=DueCallbacks, tags=["callbacks"])
async def due_callbacks(
    principal: Reader, app: Intake, office: str | None = None, as_of: Moment | None = None
) -> DueCallbacks:
    """Resolved issues due for a follow-up call (待回访), oldest first; the reporter's
    contact only for the office's own clerk or leader."""
    moment = as_of or datetime.now(UTC)
    found = await run_in_threadpool(
        app.due_for_callback, offices_to_read(principal, office), moment
    )
    items = []
    for issue in found:
        shows = _shows_reporter(principal, issue)
        items.append(
            DueCallback(
                id=issue.id,
                office=issue.office,
                title=issue.title,
                category=issue.category,
                resolved_at=issue.resolved_at,
                reporter_name=issue.reporter_name if shows else None,
                reporter_phone=issue.reporter_phone if shows else None,
            )
        )
    return DueCallbacks(as_of=moment, working_days=app.callback_working_days, items=items)


@router.get("/categories", tags=["issues"])
async def categories(principal: Reader, app: Intake) -> dict[str, Any]:
    """The issue categories of the caller's office (问题类别)."""
    return {"office": principal.office, "categories": list(app.categories_of(principal.office))}


# --- spreadsheet imports ------------------------------------------------------------------


@router.post("/imports/{kind}", response_model=ImportAnswer, tags=["imports"])
async def import_spreadsheet(
    kind: Kind,
    principal: CurrentPrincipal,
    app: Intake,
    file: Annotated[UploadFile, File(description=".xlsx 或 .csv（UTF-8 / GBK）")],
    office: str | None = None,
    first_row: Annotated[int, Query(ge=2, description="number of the file's first data row")] = 2,
    idempotency_key: IdempotencyKey = None,
) -> ImportAnswer:
    """Import activities or issues from a spreadsheet (表格导入); a re-import stores nothing.

    Idempotent by the rows' own keys (编号), so an `Idempotency-Key` is accepted and not needed.
    """
    require_role(principal, "clerk")
    office = office or principal.office
    _own_office(principal, office, "导入")
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImportRefused(f"文件超过 {MAX_UPLOAD_BYTES // 2**20} MB / the file is too large")
    result = await app.import_file(kind, office, data, file.filename or "", first_row)
    return ImportAnswer(
        stored=result.stored,
        unchanged=result.unchanged,
        errors=[RowProblem(row=e.row, column=e.column, reason=e.reason) for e in result.errors],
    )


@router.get("/imports/{kind}/template.xlsx", tags=["imports"])
async def import_template(kind: Kind, principal: Reader) -> Response:
    """The import template (导入模板) with the Chinese headers and how to fill them."""
    name = "活动导入模板" if kind == "activities" else "问题导入模板"
    return Response(
        await run_in_threadpool(template, kind),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f"attachment; filename={kind}-template.xlsx; "
            f"filename*=UTF-8''{_quote(name)}.xlsx"
        },
    )


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text)


# --- domain refusals as HTTP answers ------------------------------------------------------


async def _rule_broken(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, IssueRuleBroken)
    # Answered like a malformed field: the same 422 body whichever check refused it.
    validation = RequestValidationError(
        [{"loc": ("body", error.field), "msg": error.reason, "type": "value_error"}]
    )
    answer: JSONResponse = await request.app.exception_handlers[RequestValidationError](
        request, validation
    )
    return answer


async def _import_refused(request: Request, error: Exception) -> JSONResponse:
    validation = RequestValidationError(
        [{"loc": ("body", "file"), "msg": str(error), "type": "value_error"}]
    )
    answer: JSONResponse = await request.app.exception_handlers[RequestValidationError](
        request, validation
    )
    return answer


async def _transition_refused(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, TransitionRefused)
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={"message": error.reason, "detail": error.reason, "status": error.status},
    )


async def _idempotency_conflict(_: Request, __: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT, content={"message": KEY_REUSED, "detail": KEY_REUSED}
    )


async def _not_found(_: Request, error: Exception) -> JSONResponse:
    reason = _NO_ACTIVITY if isinstance(error, ActivityNotFound) else _NO_ISSUE
    return JSONResponse(
        status_code=status.HTTP_404_NOT_FOUND, content={"message": reason, "detail": reason}
    )


def install_refusal_handlers(app: FastAPI) -> None:
    """Domain refusals become 422 (a bad field) or 409 (not in this state); nothing stored."""
    app.add_exception_handler(IssueNotFound, _not_found)
    app.add_exception_handler(ActivityNotFound, _not_found)
    app.add_exception_handler(IssueRuleBroken, _rule_broken)
    app.add_exception_handler(ImportRefused, _import_refused)
    app.add_exception_handler(TransitionRefused, _transition_refused)
    app.add_exception_handler(IdempotencyConflict, _idempotency_conflict)
