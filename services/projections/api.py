"""The read side's HTTP API: issue status, yearly statistics and their drill-downs, exports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from services.projections.consumers import ProjectionProgress
from services.projections.derive import STATUS_LABELS
from services.projections.exports import (
    DRILL_COLUMNS,
    DRILL_KIND,
    FIGURE_COLUMNS,
    ISSUE_COLUMNS,
    ExportFormat,
    export,
)
from services.projections.queries import (
    BREAKDOWN_FILTERS,
    FIGURES,
    MEETING_KINDS,
    IssueFilter,
    breakdown,
    drill_down,
    fact_day_end,
    issue_item,
    list_issues,
    statistics,
    years_with_data,
)
from services.projections.schemas import (
    Breakdown,
    DrillDown,
    IssuePage,
    IssueStatus,
    YearlyStatistics,
    YearsWithData,
)
from services.projections.views import ProjectionView
from shared.auth import Principal, Reader
from shared.web import MAX_PAGE

EXPORT_LIMIT = 100_000
"""Rows in one export: far more than an office's year, far less than a spreadsheet's limit."""


async def wait_for(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


# `async def`: FastAPI would run a plain `def` dependency in the thread pool, a round trip
# per request for an attribute look-up.
async def view(request: Request) -> ProjectionView:
    return request.app.state.view


async def progress(request: Request) -> ProjectionProgress:
    return request.app.state.progress


View = Annotated[ProjectionView, Depends(view)]
Progress = Annotated[ProjectionProgress, Depends(progress)]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="页码 / page, from 1")]
PageSize = Annotated[int, Query(ge=1, le=200, description="每页条数 / page size, ≤ 200")]
AsOf = Annotated[
    date | None, Query(description="截至该日（北京时间）结束 / as at the end of that day")
]
Format = Annotated[ExportFormat, Query(alias="format", description="json, csv or xlsx")]
Year = Annotated[int, Path(ge=2000, le=2100)]

router = APIRouter(tags=["projections"])
NO_ISSUE = "没有这个问题 / no such issue"


def readable_offices(
    request: Request, principal: Principal, office: str | None
) -> list[str] | None:
    """The offices a request reads: its own for a county, all (None) or one for the prefecture.

    A county asking for another office gets 404, as for any resource of another office.
    """
    if office is not None and office not in request.app.state.settings.offices:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "office"),
                    "msg": f"未知的政协 / unknown office {office!r}",
                    "type": "value_error",
                    "input": office,
                }
            ]
        )
    if office is not None:
        if not principal.can_read(office):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这个政协的数据 / no such office")
        return [office]
    return None if principal.is_prefecture else [principal.office]


@router.get("/issues", response_model=IssuePage)
def issues(
    request: Request,
    principal: Reader,
    view: View,
    office: str | None = None,
    status_: Annotated[
        Literal[tuple(STATUS_LABELS)] | None,  # type: ignore[valid-type]
        Query(alias="status"),
    ] = None,
    category: str | None = None,
    community: str | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    key_problem: bool | None = None,
    department: str | None = None,
    month: Annotated[
        int | None, Query(ge=1, le=12, description="提交月份（北京时间）/ month submitted, China")
    ] = None,
    page: Page = 1,
    page_size: PageSize = 50,
    fmt: Format = "json",
) -> Any:
    """Issues with their combined status (问题状态列表), filtered and paged, or exported."""
    where = IssueFilter(
        readable_offices(request, principal, office),
        status_,
        category,
        community,
        year,
        key_problem,
        department,
        month,
    )
    if fmt != "json":
        _, rows = list_issues(view, where, EXPORT_LIMIT, 0)
        return export(rows, ISSUE_COLUMNS, "问题状态 issues", fmt)
    total, rows = list_issues(view, where, page_size, (page - 1) * page_size)
    return {"items": rows, "total": total, "page": page, "page_size": page_size}


@router.get("/issues/{issue_id}", response_model=IssueStatus)
async def issue_status(
    issue_id: str,
    principal: Reader,
    issues: View,
    progress: Progress,
    wait: Annotated[
        float, Query(ge=0, le=30, description="最多等待秒数 / seconds to wait for it to appear")
    ] = 0,
    as_of: AsOf = None,
) -> IssueStatus:
    """Where an issue is now (问题当前状态) or was on a day, with its timeline across services."""
    until = None if as_of is None else fact_day_end(as_of)
    deadline = time.monotonic() + wait
    while True:
        applied = progress.next_apply()
        row: dict[str, Any] | None = await run_in_threadpool(issues.issue, issue_id, until)
        remaining = deadline - time.monotonic()
        if row is not None or remaining <= 0:
            break
        await wait_for(applied, remaining)
    if row is None or not principal.can_read(row["office"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_ISSUE)
    timeline = row.pop("timeline")
    item = issue_item(row)
    return IssueStatus(
        **item, as_of=None if as_of is None else as_of.isoformat(), timeline=timeline
    )


def statistics_key(
    year: int, all_offices: list[str], chosen: list[str] | None, as_of: date | None
) -> tuple[Any, ...]:
    """The question a statistics request asks, as the cache knows it (`chosen` None: all)."""
    offices = all_offices if chosen is None else chosen
    return (year, tuple(offices), chosen is None, as_of)


class StatisticsCache:
    """Answers of `GET /statistics/{year}` by question, each valid while the view is unchanged.

    Dashboards ask the same few questions again and again; the counters change only when a
    batch is applied, and then the view's version moves on.
    """

    size = 512

    def __init__(self) -> None:
        self._answers: dict[tuple[Any, ...], tuple[ProjectionView, int, bytes]] = {}

    def get(self, view: ProjectionView, key: tuple[Any, ...]) -> bytes | None:
        found = self._answers.get(key)
        if found is None or found[0] is not view or found[1] != view.version:
            return None
        return found[2]

    def put(self, view: ProjectionView, version: int, key: tuple[Any, ...], body: bytes) -> None:
        if len(self._answers) >= self.size:
            self._answers.clear()
        self._answers[key] = (view, version, body)


async def statistics_cache(request: Request) -> StatisticsCache:
    return request.app.state.statistics_cache


Cache = Annotated[StatisticsCache, Depends(statistics_cache)]


@router.get("/statistics/years", response_model=YearsWithData)
def statistics_years(
    request: Request, principal: Reader, view: View, office: str | None = None
) -> YearsWithData:
    """The years that have figures (有数据的年度), for the reader's offices."""
    return YearsWithData(years=years_with_data(view, readable_offices(request, principal, office)))


@router.get(
    "/statistics/{year}",
    response_model=YearlyStatistics,
    responses={200: {"content": {"text/csv": {}, "application/vnd.ms-excel": {}}}},
)
async def yearly_statistics(
    year: Year,
    principal: Reader,
    view: View,
    cache: Cache,
    request: Request,
    as_of: AsOf = None,
    office: str | None = None,
    fmt: Format = "json",
) -> Response:
    """Yearly statistics (年度统计) per office and in total; a county office sees its own."""
    chosen = readable_offices(request, principal, office)
    offices = request.app.state.settings.offices if chosen is None else chosen
    key = statistics_key(year, request.app.state.settings.offices, chosen, as_of)
    if fmt == "json" and (body := cache.get(view, key)) is not None:
        return Response(body, media_type="application/json")
    version = view.version  # taken before reading: a later batch makes this answer stale
    answer = await run_in_threadpool(statistics, view, year, offices, chosen is None, as_of)
    if fmt != "json":
        rows = [*answer["offices"], {**answer["total"], "office": "合计 total"}]
        return export(rows, FIGURE_COLUMNS, f"{year}年度统计 statistics", fmt)
    # Built here rather than through the response model: this is the hot read of dashboards.
    body = json.dumps(answer, ensure_ascii=False).encode()
    cache.put(view, version, key, body)
    return Response(body, media_type="application/json")


@router.get("/statistics/{year}/breakdown", response_model=Breakdown)
def statistics_breakdown(
    year: Year,
    principal: Reader,
    view: View,
    request: Request,
    office: str | None = None,
    as_of: AsOf = None,
) -> Any:
    """A year's issues by month, category, community and status, the overdue ones by
    department (分类统计), each bucket with the link to the issue list behind it."""
    offices = readable_offices(request, principal, office)
    counted = breakdown(view, year, offices, as_of)
    scope = {"year": year} if office is None else {"year": year, "office": office}
    links = {
        name: {
            key: "/issues?"
            + urlencode({**scope, **{k: v.format(key) for k, v in BREAKDOWN_FILTERS[name].items()}})
            for key in buckets
        }
        for name, buckets in counted.items()
    }
    return {
        "year": year,
        "office": office,
        "as_of": None if as_of is None else as_of.isoformat(),
        **counted,
        "links": links,
    }


@router.get("/statistics/{year}/{figure}", response_model=DrillDown)
def statistics_drill_down(
    year: Year,
    figure: Literal[FIGURES],  # type: ignore[valid-type]
    principal: Reader,
    view: View,
    request: Request,
    office: str | None = None,
    as_of: AsOf = None,
    kind: Annotated[
        Literal[MEETING_KINDS] | None,  # type: ignore[valid-type]
        Query(description="meetings_held: thematic, onsite or written"),
    ] = None,
    page: Page = 1,
    page_size: PageSize = 50,
    fmt: Format = "json",
) -> Any:
    """The items behind one figure (统计明细), each with the events behind it."""
    offices = readable_offices(request, principal, office)
    if fmt != "json":
        _, rows = drill_down(view, figure, year, offices, as_of, kind, EXPORT_LIMIT, 0)
        columns = DRILL_COLUMNS[DRILL_KIND.get(figure, "issue")]
        return export(rows, columns, f"{year} {figure}", fmt)
    total, items = drill_down(
        view, figure, year, offices, as_of, kind, page_size, (page - 1) * page_size
    )
    return {
        "year": year,
        "figure": figure,
        "office": office,
        "as_of": None if as_of is None else as_of.isoformat(),
        "items": items,
        "total": total,
        "page": page,
        "page_size": page_size,
    }
