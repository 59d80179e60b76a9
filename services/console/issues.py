"""The clerk's and the leader's pages (办公室 / 领导小组): issues, activities, imports,
screening."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.console.accounts import Account
from services.console.client import ApiError
from services.console.web import (
    Form,
    client,
    current_account,
    form_of,
    render,
    require,
    written,
)
from shared.auth import READERS
from shared.clock import CHINA, CalendarNotCovered, china_day, working_days_between

router = APIRouter()
LoggedIn = Annotated[Account, Depends(current_account)]

SOURCES = {
    "outreach": ("委员进基层活动", "outreach activity"),
    "liaison_station": ("联络站", "liaison station"),
    "visit": ("走访", "visit"),
    "online": ("网上", "online"),
    "hotline": ("热线", "hotline"),
}
DECISIONS = {
    "topic": ("列为协商议题", "consultation topic"),
    "report": ("编报社情民意", "public-opinion report"),
    "refer": ("转承办单位", "refer to a department"),
    "answered": ("当场答复", "answered on the spot"),
    "duplicate": ("重复问题", "duplicate"),
    "rejected": ("不予采纳", "rejected"),
}
STATUSES = (
    "submitted",
    "topic",
    "report",
    "referred",
    "answered",
    "duplicate",
    "rejected",
    "on_agenda",
    "consulted",
    "under_supervision",
    "overdue",
    "resolved",
    "closed",
)
SATISFACTIONS = {
    "satisfied": ("满意", "satisfied"),
    "basically_satisfied": ("基本满意", "basically satisfied"),
    "unsatisfied": ("不满意", "unsatisfied"),
}
PAGE_SIZE = 20


def now_local() -> str:
    """Now in China time, as a `datetime-local` field shows it."""
    return datetime.now(CHINA).strftime("%Y-%m-%dT%H:%M:%S")


def filled(form: dict[str, Any], *names: str) -> dict[str, Any]:
    """The named fields the user filled in (an empty field is left to the API's default)."""
    return {n: form[n] for n in names if isinstance(form.get(n), str) and form[n].strip()}


@router.get("/")
async def home(request: Request, account: LoggedIn) -> Response:
    """The workbench (工作台): what each of the account's roles does."""
    return render(request, "home.html")


@router.get("/issues")
async def issue_list(
    request: Request,
    account: LoggedIn,
    status: str = "",
    category: str = "",
    year: str = "",
    month: str = "",
    key_problem: str = "",
    page: int = 1,
) -> Response:
    """The office's issues with filters and paging (问题清单), from the projections."""
    require(account, *READERS)
    filters = {
        "status": status,
        "category": category,
        "year": year,
        "month": month,
        "key_problem": key_problem,
    }
    # The two calls are independent: asked at once, the page waits for the slower only.
    found, categories = await asyncio.gather(
        client(request).get(
            account, "projections", "/issues", **filters, page=max(page, 1), page_size=PAGE_SIZE
        ),
        client(request).get(account, "intake", "/categories"),
    )
    return render(
        request,
        "issues.html",
        found=found,
        filters=filters,
        statuses=STATUSES,
        categories=categories["categories"],
        pages=max(1, -(-found["total"] // PAGE_SIZE)),
    )


async def _new_issue_page(
    request: Request, account: Account, form: Form, status_code: int = 200
) -> Response:
    categories = await client(request).get(account, "intake", "/categories")
    return render(
        request,
        "issue_new.html",
        status_code,
        form=form,
        categories=categories["categories"],
        sources=SOURCES,
    )


@router.get("/issues/new")
async def new_issue(request: Request, account: LoggedIn) -> Response:
    """The form to submit an issue (登记问题)."""
    require(account, "clerk")
    return await _new_issue_page(request, account, Form({"submitted_at": now_local()}))


@router.post("/issues/new")
async def submit_issue(request: Request, account: LoggedIn) -> Response:
    """Submit an issue to intake; a refusal shows the form again with what was typed."""
    require(account, "clerk")
    form = await form_of(request)
    body = filled(
        form,
        "title",
        "description",
        "category",
        "submitted_at",
        "community",
        "liaison_station",
        "source",
        "reporter_name",
        "reporter_phone",
    )
    body.update(office=account.office, key_problem=form.get("key_problem") == "on")
    body.setdefault("title", "")
    body.setdefault("description", "")
    try:
        issue = await client(request).post(account, "intake", "/issues", body)
    except ApiError as error:
        return await _new_issue_page(request, account, Form.refused(form, error), error.status)
    return written(request, f"/issues/{issue['id']}?done=submitted")


def counted_in(issue: dict[str, Any]) -> tuple[int, str]:
    """The year and the dashboard figure (统计口径) the issue counts in most narrowly: a key
    problem solved, a problem solved (both in the year of its resolution, in China), or else
    an issue collected in the year it was submitted."""
    if issue.get("resolved_at"):
        year = datetime.fromisoformat(issue["resolved_at"]).astimezone(CHINA).year
        return year, "key_problems_resolved" if issue["key_problem"] else "issues_resolved"
    return datetime.fromisoformat(issue["submitted_at"]).astimezone(CHINA).year, "issues_collected"


async def _issue_page(
    request: Request, account: Account, issue_id: str, form: Form, status_code: int = 200
) -> Response:
    api = client(request)
    issue = await api.get(account, "intake", f"/issues/{issue_id}")
    try:
        status = await api.get(account, "projections", f"/issues/{issue_id}")
    except ApiError as error:
        if error.status != 404:
            raise
        status = None  # not yet in the projections: it has only just been submitted
    settings = request.app.state.console_settings
    dashboard = settings.dashboard_url or settings.projections_url
    year, figure = counted_in(issue)
    # A fresh key each time the form is shown: a resent form is done once, a corrected one anew.
    form.values["idempotency_key"] = uuid.uuid4().hex
    query = urlencode({"year": year, "office": issue["office"], "figure": figure})
    return render(
        request,
        "issue.html",
        status_code,
        issue=issue,
        status=status,
        form=form,
        decisions=DECISIONS,
        satisfactions=SATISFACTIONS,
        done=request.query_params.get("done"),
        dashboard=f"{dashboard}/dashboard?{query}&token={api.viewer_token(account)}",
        figure=figure,
    )


@router.get("/issues/{issue_id}")
async def issue_page(request: Request, account: LoggedIn, issue_id: str) -> Response:
    """One issue with its whole timeline across services (问题详情)."""
    require(account, *READERS)
    return await _issue_page(request, account, issue_id, Form())


@router.post("/issues/{issue_id}/screening")
async def screen(request: Request, account: LoggedIn, issue_id: str) -> Response:
    """The leader's decision on an issue (筛选)."""
    require(account, "leader")
    form = await form_of(request)
    body = filled(
        form,
        "decision",
        "screened_at",
        "report_title",
        "department",
        "deadline",
        "answer",
        "duplicate_of",
        "reason",
    )
    # An unticked box sends nothing: the hidden field tells "unflag" from "no box shown".
    if "key_problem_field" in form:
        body["key_problem"] = form.get("key_problem") == "on"
    try:
        await client(request).post(account, "intake", f"/issues/{issue_id}/screening", body)
    except ApiError as error:
        return await _issue_page(
            request, account, issue_id, Form.refused(form, error, field="decision"), error.status
        )
    return written(request, f"/issues/{issue_id}?done=screened")


@router.post("/issues/{issue_id}/close")
async def close(request: Request, account: LoggedIn, issue_id: str) -> Response:
    """Close a resolved issue (办结)."""
    require(account, "leader")
    form = await form_of(request)
    try:
        await client(request).post(account, "intake", f"/issues/{issue_id}/close", {})
    except ApiError as error:
        return await _issue_page(
            request, account, issue_id, Form.refused(form, error), error.status
        )
    return written(request, f"/issues/{issue_id}?done=closed")


@router.post("/issues/{issue_id}/reopen")
async def reopen(request: Request, account: LoggedIn, issue_id: str) -> Response:
    """Reopen a closed issue, with a reason (重新打开)."""
    require(account, "leader")
    form = await form_of(request)
    body = filled(form, "reason")
    try:
        await client(request).post(account, "intake", f"/issues/{issue_id}/reopen", body)
    except ApiError as error:
        return await _issue_page(
            request, account, issue_id, Form.refused(form, error), error.status
        )
    return written(request, f"/issues/{issue_id}?done=reopened")


@router.post("/issues/{issue_id}/callbacks")
async def record_callback(request: Request, account: LoggedIn, issue_id: str) -> Response:
    """Record the follow-up call with the resident (回访); `unsatisfied` reopens the issue."""
    require(account, "clerk")
    form = await form_of(request)
    body: dict[str, Any] = filled(form, "satisfaction", "note")
    if form.get("reached") in ("yes", "no"):
        body["reached"] = form["reached"] == "yes"
    key = str(form.get("idempotency_key") or "") or None
    try:
        called = await client(request).post(
            account, "intake", f"/issues/{issue_id}/callbacks", body, idempotency_key=key
        )
    except ApiError as error:
        return await _issue_page(
            request, account, issue_id, Form.refused(form, error, field="reached"), error.status
        )
    done = "called_back" if called["status"] in ("resolved", "closed") else "callback_reopened"
    return written(request, f"/issues/{issue_id}?done={done}#callback")


def working_days_since(resolved_at: str, today: date | None = None) -> int | None:
    """Official working days after the day of resolution up to today; None where the holiday
    calendar does not reach."""
    try:
        return working_days_between(
            china_day(datetime.fromisoformat(resolved_at)), today or datetime.now(CHINA).date()
        )
    except CalendarNotCovered:
        return None


@router.get("/callbacks")
async def callbacks_due(request: Request, account: LoggedIn, page: int = 1) -> Response:
    """Resolved issues of the office not yet called back, oldest first (待回访)."""
    require(account, *READERS)
    found = await client(request).get(account, "intake", "/callbacks/due", office=account.office)
    items = found["items"]
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    for item in shown:
        resolved = datetime.fromisoformat(item["resolved_at"]).astimezone(CHINA)
        item["resolved_local"] = resolved.strftime("%Y-%m-%d %H:%M")
        item["working_days_since"] = working_days_since(item["resolved_at"])
    return render(
        request,
        "callbacks.html",
        items=shown,
        total=len(items),
        working_days=found["working_days"],
        page=page,
        pages=pages,
    )


@router.get("/screening")
async def screening_queue(request: Request, account: LoggedIn, page: int = 1) -> Response:
    """Submitted issues waiting for a decision, oldest first (待筛选)."""
    require(account, "leader")
    found = await client(request).get(
        account,
        "intake",
        "/issues",
        office=account.office,
        status="submitted",
        page=max(page, 1),
        page_size=PAGE_SIZE,
    )
    return render(
        request,
        "screening.html",
        found=found,
        pages=max(1, -(-found["total"] // PAGE_SIZE)),
        decisions=DECISIONS,
    )


@router.get("/issues/{issue_id}/originals")
async def originals(request: Request, account: LoggedIn, issue_id: str, q: str = "") -> Response:
    """Issues of the office whose title holds `q`: the picker for a duplicate's original."""
    require(account, "leader")
    wanted = q.strip()
    found = await client(request).get(
        account, "intake", "/issues", office=account.office, q=wanted, page_size=21
    )
    # One more than shown, so that the issue itself among them still leaves twenty.
    items = [i for i in found["items"] if i["id"] != issue_id and i["status"] != "duplicate"]
    return render(request, "originals.html", items=items[:20], q=wanted)


@router.get("/activities/new")
async def new_activity(request: Request, account: LoggedIn) -> Response:
    """The form to record an outreach activity with the members present (记录活动)."""
    require(account, "clerk")
    return await _activity_page(request, account, Form({"held_at": now_local(), "members": []}))


async def _members(request: Request, account: Account) -> list[dict[str, Any]]:
    found = await client(request).get(account, "meetings", "/people", kind="member", page_size=200)
    return found["items"]


async def _activity_page(
    request: Request, account: Account, form: Form, status_code: int = 200
) -> Response:
    return render(
        request,
        "activity_new.html",
        status_code,
        form=form,
        members=await _members(request, account),
    )


@router.get("/activities/members")
async def member_picker(request: Request, account: LoggedIn, q: str = "") -> Response:
    """The roster narrowed to names holding `q`; members already ticked stay ticked."""
    require(account, "clerk")
    chosen = request.query_params.getlist("members")
    return render(
        request,
        "members.html",
        members=await _members(request, account),
        chosen=chosen,
        q=q.strip(),
    )


@router.post("/activities/new")
async def record_activity(request: Request, account: LoggedIn) -> Response:
    """Record an outreach activity in intake."""
    require(account, "clerk")
    form = await form_of(request)
    members = form.get("members") or []
    members = [members] if isinstance(members, str) else list(members)
    body: dict[str, Any] = {
        "office": account.office,
        "members": members,
        **filled(form, "held_at", "community", "liaison_station", "activity_group", "note"),
    }
    form["members"] = members
    try:
        activity = await client(request).post(account, "intake", "/activities", body)
    except ApiError as error:
        return await _activity_page(request, account, Form.refused(form, error), error.status)
    return await _activity_page(
        request,
        account,
        Form({"held_at": now_local(), "members": []}, message=_recorded(activity)),
    )


def _recorded(activity: dict[str, Any]) -> str:
    return (
        f"已记录活动，参加委员 {activity['participations']} 人次 / activity recorded with "
        f"{activity['participations']} participations"
    )


@router.get("/imports")
async def import_form(request: Request, account: LoggedIn) -> Response:
    """Upload a spreadsheet of issues or activities (表格导入)."""
    require(account, "clerk")
    return render(request, "import.html", result=None, kind="issues", message=None)


@router.post("/imports")
async def import_file(request: Request, account: LoggedIn) -> Response:
    """Send the spreadsheet to intake and show what was stored and each row's error."""
    require(account, "clerk")
    form = await form_of(request)
    kind = "activities" if form.get("kind") == "activities" else "issues"
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(
            request,
            "import.html",
            422,
            result=None,
            kind=kind,
            message="请选择一个 .xlsx 或 .csv 文件 / choose an .xlsx or .csv file",
        )
    content = await upload.read()
    try:
        result = await client(request).call(
            account,
            "intake",
            "POST",
            f"/imports/{kind}",
            params={"office": account.office},
            files={"file": (upload.filename, content, upload.content_type)},
        )
    except ApiError as error:
        return render(
            request, "import.html", error.status, result=None, kind=kind, message=error.message
        )
    return render(request, "import.html", result=result, kind=kind, message=None)


@router.get("/imports/template/{kind}")
async def import_template(request: Request, account: LoggedIn, kind: str) -> Response:
    """The spreadsheet template with the Chinese headers, as intake gives it."""
    require(account, "clerk")
    kind = "activities" if kind == "activities" else "issues"
    answer = await client(request).call(
        account, "intake", "GET", f"/imports/{kind}/template.xlsx", raw=True
    )
    return Response(
        answer.content,
        media_type=answer.headers.get("content-type"),
        headers={"Content-Disposition": f'attachment; filename="{kind}-template.xlsx"'},
    )
