"""Intake's HTTP API: thin routes over the application."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.intake.application import IdempotencyConflict, IntakeApplication, IssueNotFound
from services.intake.domain import Issue, IssueRuleBroken
from shared.auth import CurrentPrincipal, require_role


class IssueSubmission(BaseModel):
    """A new issue as a clerk records it."""

    model_config = ConfigDict(extra="forbid")

    office: str = Field(min_length=1, max_length=40, examples=["yanji"])
    title: str = Field(min_length=1, max_length=200, examples=["小区路灯损坏"])
    description: str = Field(min_length=1, max_length=5000)
    category: str = Field(min_length=1, max_length=40, examples=["城市管理"])
    submitted_at: AwareDatetime = Field(examples=["2020-06-04T15:30:00+08:00"])


class IssueView(BaseModel):
    id: UUID
    office: str
    title: str
    description: str
    category: str
    submitted_at: datetime
    recorded_at: datetime
    version: int

    @classmethod
    def of(cls, issue: Issue) -> IssueView:
        return cls(
            id=issue.id,
            office=issue.office,
            title=issue.title,
            description=issue.description,
            category=issue.category,
            submitted_at=issue.submitted_at,
            recorded_at=issue.created_on,
            version=issue.version,
        )


# Dependencies are `async def` because FastAPI runs a plain `def` one in the thread pool:
# a round trip per request for what is only an attribute look-up.
async def intake(request: Request) -> IntakeApplication:
    return request.app.state.intake


Intake = Annotated[IntakeApplication, Depends(intake)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="重试时使用同一个键 / reuse on retry: the first result is returned",
    ),
]

router = APIRouter(prefix="/issues", tags=["issues"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=IssueView)
async def submit_issue(
    body: IssueSubmission,
    principal: CurrentPrincipal,
    app: Intake,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> IssueView:
    """Record an issue (收集问题和建议) for the caller's own office."""
    require_role(principal, "clerk")
    if body.office != principal.office:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "只能为本政协登记问题 / you can record issues only for your own office",
        )
    try:
        issue, created = await app.submit_issue(
            body.office,
            body.title,
            body.description,
            body.category,
            body.submitted_at,
            idempotency_key=idempotency_key,
        )
    except IssueRuleBroken as error:
        # Answered like a malformed field: the same 422 body whichever check refused it.
        raise RequestValidationError(
            [{"loc": ("body", error.field), "msg": error.reason, "type": "value_error"}]
        ) from error
    except IdempotencyConflict as error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Idempotency-Key 已用于另一条不同的问题 / this Idempotency-Key was already used "
            "for a different submission",
        ) from error
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/issues/{issue.id}"
    return IssueView.of(issue)


@router.get("/{issue_id}", response_model=IssueView)
async def get_issue(issue_id: UUID, principal: CurrentPrincipal, app: Intake) -> IssueView:
    """One issue as intake recorded it."""
    try:
        issue = await run_in_threadpool(app.get_issue, issue_id)
    except IssueNotFound:
        issue = None
    if issue is None or not principal.can_read(issue.office):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这个问题 / no such issue")
    return IssueView.of(issue)
