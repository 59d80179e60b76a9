"""What every service's HTTP side shares: health and readiness probes, error bodies, serving."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import uvicorn
from fastapi import APIRouter, FastAPI, Header, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.observability import log_config
from shared.settings import ServiceSettings

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="重试时使用同一个键 / reuse on retry: the request is carried out once",
    ),
]
"""Every write takes one (docs/API.md): a retry with the same key stores nothing new."""
MAX_PAGE = 1_000_000
"""Far past any list's end, yet its offset fits the 64-bit integers SQL counts rows with."""
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PageSize = Annotated[int, Query(ge=1, le=200)]

CHINA = ZoneInfo("Asia/Shanghai")
FIRST_YEAR, LAST_YEAR = 1949, 2099
_EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=CHINA)
_AFTER_LAST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=CHINA)


def china_time(moment: datetime) -> datetime:
    """A time in a request body; without an offset it is China Standard Time (docs/API.md).
    Its year must lie in FIRST_YEAR..LAST_YEAR: a time in year 1 or 9999 cannot be put on
    China's clock, and once stored it broke every list that showed it (found by fuzzing)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA)
    if not _EARLIEST <= moment < _AFTER_LAST:
        raise ValueError(
            f"时间须在 {FIRST_YEAR} 年至 {LAST_YEAR} 年之间 / the time must lie in the years "
            f"{FIRST_YEAR} to {LAST_YEAR}"
        )
    return moment


def health_router(is_ready: Callable[[], str | None]) -> APIRouter:
    """`/healthz` answers while the process lives; `/readyz` names what is not ready yet."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz(response: Response) -> dict[str, str]:
        """Ready to serve: connected to NATS and caught up with the store or streams."""
        problem = is_ready()
        if problem is not None:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return {"status": "not ready", "reason": problem}
        return {"status": "ready"}

    return router


def serve(app: FastAPI, service: ServiceSettings, name: str = "shangliang") -> None:
    """Run a service's app with JSON logs; uvloop and httptools, since with the plain asyncio
    loop every response waited ~40 ms for a delayed ACK (TECH-NOTES)."""
    uvicorn.run(
        app,
        host=service.host,
        port=service.port,
        loop="uvloop",
        http="httptools",
        log_config=log_config(name),
        access_log=False,
    )


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    fields = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors
    )
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "message": f"请求数据无效 / invalid request: {fields}",
            "detail": jsonable_encoder(errors),
        },
    )


async def _refused(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return JSONResponse(
        {"message": error.detail, "detail": error.detail},
        status_code=error.status_code,
        headers=error.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """A 422 keeps FastAPI's per-field `detail` and adds a one-line bilingual `message`;
    every other refusal carries its bilingual reason as both `message` and `detail`."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _refused)
