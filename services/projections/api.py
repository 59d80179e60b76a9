"""The read side's HTTP API: issue status and yearly statistics, only from the read models."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from services.projections.views import STATUS_LABELS, IssueStatusView
from shared.auth import CurrentPrincipal


class ProjectionProgress:
    """Lets a reader wait until the consumers have applied something new."""

    def __init__(self) -> None:
        self._next = asyncio.Event()

    def applied(self, _position: int) -> None:
        self._next.set()
        self._next = asyncio.Event()

    def next_apply(self) -> asyncio.Event:
        """Take this before reading: it is set by the first apply after the read began."""
        return self._next


async def wait_for(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


class TimelineStep(BaseModel):
    at: str
    step: str
    stream: str
    event_id: str


class IssueStatus(BaseModel):
    issue_id: str
    office: str
    title: str
    category: str
    status: str
    status_label: str
    submitted_at: str
    year: int
    updated_at: str
    timeline: list[TimelineStep]


class OfficeFigures(BaseModel):
    office: str
    issues_collected: int


class YearlyStatistics(BaseModel):
    year: int
    offices: list[OfficeFigures]
    total: OfficeFigures


# `async def`: FastAPI would run a plain `def` dependency in the thread pool, a round trip
# per request for an attribute look-up.
async def view(request: Request) -> IssueStatusView:
    return request.app.state.view


async def progress(request: Request) -> ProjectionProgress:
    return request.app.state.progress


View = Annotated[IssueStatusView, Depends(view)]
Progress = Annotated[ProjectionProgress, Depends(progress)]

router = APIRouter(tags=["projections"])


@router.get("/issues/{issue_id}", response_model=IssueStatus)
async def issue_status(
    issue_id: str,
    principal: CurrentPrincipal,
    issues: View,
    progress: Progress,
    wait: Annotated[
        float, Query(ge=0, le=30, description="最多等待秒数 / seconds to wait for it to appear")
    ] = 0,
) -> IssueStatus:
    """Where an issue is now (问题当前状态), with its timeline."""
    deadline = time.monotonic() + wait
    while True:
        applied = progress.next_apply()
        row: dict[str, Any] | None = await run_in_threadpool(issues.issue, issue_id)
        remaining = deadline - time.monotonic()
        if row is not None or remaining <= 0:
            break
        await wait_for(applied, remaining)
    if row is None or not principal.can_read(row["office"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这个问题 / no such issue")
    return IssueStatus(**row, status_label=STATUS_LABELS[row["status"]])


@router.get("/statistics/{year}", response_model=YearlyStatistics)
def yearly_statistics(
    year: Annotated[int, Path(ge=2000, le=2100)],
    principal: CurrentPrincipal,
    issues: View,
    request: Request,
) -> YearlyStatistics:
    """Yearly statistics (年度统计) per office and in total; a county office sees its own."""
    settings = request.app.state.settings
    offices = settings.offices if principal.is_prefecture else [principal.office]
    collected = issues.issues_collected(year)
    rows = [OfficeFigures(office=o, issues_collected=collected.get(o, 0)) for o in offices]
    total = OfficeFigures(office="total", issues_collected=sum(r.issues_collected for r in rows))
    return YearlyStatistics(year=year, offices=rows, total=total)
