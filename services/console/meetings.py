"""The meetings staff's pages (协商会议): plan, topics, invitations, holding, conclusion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.console.accounts import Account
from services.console.client import ApiError
from services.console.issues import filled
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
from shared.auth import READERS

router = APIRouter()
LoggedIn = Annotated[Account, Depends(current_account)]

KINDS = {
    "thematic": ("专题协商会", "thematic meeting"),
    "onsite": ("现场协商会", "on-site meeting"),
    "written": ("书面协商", "written consultation"),
}
OUTCOME_ROWS = 3
"""Outcome rows on the conclusion form; the empty ones are left out."""
PAGE_SIZE = 20


def _many(form: dict[str, Any], name: str) -> list[str]:
    value = form.get(name) or []
    return [value] if isinstance(value, str) else list(value)


@router.get("/meetings")
async def meeting_list(request: Request, account: LoggedIn, page: int = 1) -> Response:
    """The office's meetings (协商会议)."""
    require(account, *READERS)
    found = await client(request).get(
        account, "meetings", "/meetings", office=account.office, page=max(page, 1), page_size=20
    )
    return render(
        request,
        "meetings.html",
        found=found,
        kinds=KINDS,
        pages=max(1, -(-found["total"] // PAGE_SIZE)),
    )


async def _plan_page(
    request: Request, account: Account, form: Form, status_code: int = 200
) -> Response:
    venues = await client(request).get(account, "meetings", "/venues", page_size=200)
    return render(
        request, "meeting_new.html", status_code, form=form, kinds=KINDS, venues=venues["items"]
    )


@router.get("/meetings/new")
async def new_meeting(request: Request, account: LoggedIn) -> Response:
    """The form to plan a meeting (筹备会议)."""
    require(account, "meetings")
    return await _plan_page(request, account, Form({"kind": "thematic"}))


@router.post("/meetings/new")
async def plan_meeting(request: Request, account: LoggedIn) -> Response:
    """Plan a meeting; a venue booked at that time is named next to the venue."""
    require(account, "meetings")
    form = await form_of(request)
    body = {
        "office": account.office,
        **filled(
            form,
            "kind",
            "title",
            "theme",
            "starts_at",
            "ends_at",
            "venue",
            "submission_deadline",
            "planned_at",
        ),
    }
    try:
        meeting = await client(request).post(account, "meetings", "/meetings", body)
    except ApiError as error:
        refused = Form.refused(form, error, field="venue" if error.status == 409 else None)
        return await _plan_page(request, account, refused, error.status)
    return written(request, f"/meetings/{meeting['id']}?done=planned")


async def _meeting_page(
    request: Request, account: Account, meeting_id: str, form: Form, status_code: int = 200
) -> Response:
    api = client(request)
    meeting = await api.get(account, "meetings", f"/meetings/{meeting_id}")
    people: list[dict[str, Any]] = []
    departments: list[dict[str, Any]] = []
    topics_to_add: list[dict[str, Any]] = []
    if "meetings" in account.roles and meeting["status"] in ("planned", "held"):
        people = (await api.get(account, "meetings", "/people", page_size=200))["items"]
        departments = (await api.get(account, "meetings", "/departments", page_size=200))["items"]
        accepted = await api.get(
            account, "intake", "/issues", office=account.office, status="topic", page_size=200
        )
        on_agenda = {t["issue_id"] for t in meeting["topics"]}
        topics_to_add = [i for i in accepted["items"] if i["id"] not in on_agenda]
    calendar = (
        f"{request.app.state.console_settings.meetings_url}/calendar/{meeting['office']}.ics"
        f"?token={api.calendar_token(account)}"
    )
    return render(
        request,
        "meeting.html",
        status_code,
        meeting=meeting,
        form=form,
        kinds=KINDS,
        people=people,
        departments=departments,
        topics_to_add=topics_to_add,
        outcome_rows=range(OUTCOME_ROWS),
        calendar=calendar,
        blank=Form(),
        done=request.query_params.get("done"),
    )


@router.get("/meetings/{meeting_id}")
async def meeting_page(request: Request, account: LoggedIn, meeting_id: str) -> Response:
    """One meeting and what its staff may do next."""
    require(account, *READERS)
    return await _meeting_page(request, account, meeting_id, Form())


def _conclusion(form: dict[str, Any]) -> dict[str, Any]:
    outcomes = []
    for row in range(OUTCOME_ROWS):
        fields = filled(form, f"recommendation_{row}", f"department_{row}", f"deadline_{row}")
        issues = _many(form, f"issue_ids_{row}")
        if fields or issues:
            outcomes.append(
                {
                    "issue_ids": issues,
                    "recommendation": fields.get(f"recommendation_{row}", ""),
                    "department": fields.get(f"department_{row}", ""),
                    "deadline": fields.get(f"deadline_{row}"),
                }
            )
    return {"outcomes": outcomes, **filled(form, "concluded_at")}


STEPS: dict[str, tuple[str, str]] = {
    # step: (the API's path under the meeting, the field a 409 belongs next to)
    "topics": ("topics", "issue_id"),
    "invitations": ("invitations", "person_id"),
    "held": ("held", "attendance"),
    "opinions": ("opinions", "opinion"),
    "close": ("close", "closed_at"),
    "postpone": ("postpone", "starts_at"),
    "cancel": ("cancel", "reason"),
    "conclusion": ("conclusion", "outcomes"),
}


def _body(step: str, form: dict[str, Any]) -> dict[str, Any]:
    if step == "held":
        return {"attendance": _many(form, "attendance"), **filled(form, "held_at")}
    if step == "conclusion":
        return _conclusion(form)
    return filled(
        form,
        "issue_id",
        "person_id",
        "role",
        "opinion",
        "received_at",
        "closed_at",
        "starts_at",
        "ends_at",
        "submission_deadline",
        "reason",
    )


@router.post("/meetings/{meeting_id}/{step}")
async def meeting_step(request: Request, account: LoggedIn, meeting_id: str, step: str) -> Response:
    """One step of a meeting, sent to the meetings service; its refusal shown by the field."""
    if step not in STEPS:
        raise Refused(404, "没有这个会议步骤 / no such step")
    require(account, "meetings")
    form = await form_of(request)
    path, conflict_field = STEPS[step]
    try:
        await client(request).post(
            account, "meetings", f"/meetings/{meeting_id}/{path}", _body(step, form)
        )
    except ApiError as error:
        refused = Form.refused(form, error, field=conflict_field)
        refused.values["_step"] = step
        return await _meeting_page(request, account, meeting_id, refused, error.status)
    return written(request, f"/meetings/{meeting_id}?done={step}")
