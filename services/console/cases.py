"""The supervisor's and the department's pages (督办 / 承办单位): cases, letters, reports."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.console.accounts import Account
from services.console.client import ApiError
from services.console.issues import filled, now_local
from services.console.web import (
    Form,
    Refused,
    client,
    current_account,
    form_of,
    render,
    require,
    written,
)
from shared.clock import CHINA, CalendarNotCovered, working_days_between

router = APIRouter()
LoggedIn = Annotated[Account, Depends(current_account)]

CASE_ROLES = ("supervisor", "leader", "department", "viewer", "admin")
CASE_STATUSES = (
    "opened",
    "letter_issued",
    "acknowledged",
    "in_progress",
    "completed",
    "verified",
    "reopened",
)
FOLLOW_UPS = {
    "research": ("调研", "research visit"),
    "inspection": ("视察", "inspection"),
    "symposium": ("座谈", "symposium"),
}
MEMBER_SEPARATORS = re.compile(r"[,，、\s]+")
PAGE_SIZE = 20


def working_days_left(deadline: str | None, today: date | None = None) -> int | None:
    """Official working days from tomorrow to the deadline (negative once past); None where
    the holiday calendar does not reach."""
    if not deadline:
        return None
    try:
        return working_days_between(
            today or datetime.now(CHINA).date(), date.fromisoformat(deadline[:10])
        )
    except CalendarNotCovered:
        return None


@router.get("/cases")
async def case_list(
    request: Request,
    account: LoggedIn,
    department: str = "",
    status: str = "",
    overdue: str = "",
    page: int = 1,
) -> Response:
    """Cases with their deadlines (督办件); a department user's inbox is its own cases,
    open ones nearest deadline first."""
    require(account, *CASE_ROLES)
    inbox = account.roles == ("department",)
    filters = {"department": department, "status": status, "overdue": overdue}
    found = await client(request).get(
        account,
        "supervision",
        "/cases",
        **filters,
        sort="deadline" if inbox else "opened",
        page=max(page, 1),
        page_size=PAGE_SIZE,
    )
    for case in found["items"]:
        done = case["status"] in ("completed", "verified")
        case["working_days_left"] = None if done else working_days_left(case["deadline"])
    return render(
        request,
        "cases.html",
        found=found,
        inbox=inbox,
        filters=filters,
        statuses=CASE_STATUSES,
        pages=max(1, -(-found["total"] // PAGE_SIZE)),
    )


async def _case_page(
    request: Request, account: Account, case_id: str, form: Form, status_code: int = 200
) -> Response:
    case = await client(request).get(account, "supervision", f"/cases/{case_id}")
    case["working_days_left"] = working_days_left(case["deadline"])
    return render(
        request,
        "case.html",
        status_code,
        case=case,
        form=form,
        follow_up_kinds=FOLLOW_UPS,
        done=request.query_params.get("done"),
    )


@router.get("/cases/{case_id}")
async def case_page(request: Request, account: LoggedIn, case_id: str) -> Response:
    """One case: letters, reports, follow-ups, and what the account may do next."""
    require(account, *CASE_ROLES)
    return await _case_page(request, account, case_id, Form({"at": now_local()}))


STEPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "letters": (("supervisor",), ("requirements", "deadline", "working_days", "issued_at")),
    "acknowledgement": (("department",), ("acknowledged_at",)),
    "progress": (("department",), ("note", "reported_at")),
    "completion": (("department",), ("note", "reported_at")),
    "follow-ups": (("supervisor",), ("kind", "held_at", "note")),
    "verification": (("supervisor", "leader"), ("verified_at",)),
    "send-back": (("supervisor", "leader"), ("reason", "deadline", "reopened_at")),
}


@router.post("/cases/{case_id}/{step}")
async def case_step(request: Request, account: LoggedIn, case_id: str, step: str) -> Response:
    """One step of a case, sent to supervision as it is; its refusal is shown by the field."""
    if step not in STEPS:
        raise Refused(404, "没有这个办理步骤 / no such step")
    roles, fields = STEPS[step]
    require(account, *roles)
    form = await form_of(request)
    body: dict[str, Any] = filled(form, *fields)
    if step == "letters" and "working_days" in body:
        body["working_days"] = _number(body["working_days"])
    if step == "follow-ups":
        body["members"] = [m for m in MEMBER_SEPARATORS.split(str(form.get("members", ""))) if m]
    try:
        await client(request).post(account, "supervision", f"/cases/{case_id}/{step}", body)
    except ApiError as error:
        return await _case_page(request, account, case_id, Form.refused(form, error), error.status)
    return written(request, f"/cases/{case_id}?done={step}")


def _number(text: str) -> int | str:
    # Sent as typed when it is no number, so the API names the field in its refusal.
    return int(text) if text.strip().isdigit() else text


@router.get("/cases/{case_id}/letters/{sequence}.docx")
async def letter_document(
    request: Request, account: LoggedIn, case_id: str, sequence: int
) -> Response:
    """The printable letter (督办函), as supervision renders it."""
    require(account, *CASE_ROLES)
    answer = await client(request).call(
        account, "supervision", "GET", f"/cases/{case_id}/letters/{sequence}.docx", raw=True
    )
    return Response(
        answer.content,
        media_type=answer.headers.get("content-type"),
        headers={"Content-Disposition": answer.headers.get("content-disposition", "attachment")},
    )
