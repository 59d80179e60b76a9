"""What every service's HTTP side shares: health and readiness probes, error bodies, serving."""

from __future__ import annotations

import errno
from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import uvicorn
from eventsourcing.persistence import PersistenceError
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


STORE_FULL = (
    "存储空间已满，本次请求未保存任何内容；腾出磁盘空间后用同一个 Idempotency-Key 重试 / the "
    "store is out of space: nothing of this request was stored; free disk space, then retry "
    "with the same Idempotency-Key"
)


def _out_of_space(error: BaseException) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100), or the OS's ENOSPC, however
    deep the store wrapped it."""
    while error is not None:
        text = str(error).lower()
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if "database or disk is full" in text or "no space left on device" in text:
            return True
        if getattr(error, "sqlstate", None) == "53100":
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False


async def _store_failed(_: Request, error: Exception) -> JSONResponse:
    """A full disk is the operator's to fix and the client's to retry: 503, not a 500. The
    transaction was rolled back, so nothing is half-stored."""
    if not _out_of_space(error):
        raise error
    return JSONResponse(
        {"message": STORE_FULL, "detail": STORE_FULL},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "10"},
    )


def install_error_handlers(app: FastAPI) -> None:
    """A 422 keeps FastAPI's per-field `detail` and adds a one-line bilingual `message`;
    every other refusal carries its bilingual reason as both `message` and `detail`; a store
    out of space answers 503."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _refused)
    app.add_exception_handler(PersistenceError, _store_failed)
    app.add_exception_handler(OSError, _store_failed)
