"""What every service's HTTP side shares: health and readiness probes, error bodies, serving."""

from __future__ import annotations

import errno
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

import uvicorn
from eventsourcing.persistence import PersistenceError
from fastapi import APIRouter, FastAPI, Header, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.clock import CHINA
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

FIRST_YEAR, LAST_YEAR = 1949, 2099
_EARLIEST = datetime(FIRST_YEAR, 1, 1, tzinfo=CHINA)
_AFTER_LAST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=CHINA)


def request_time(moment: datetime) -> datetime:
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


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_text(value: object) -> object:
    """Times and dates come as ISO 8601 text: pydantic would also read a number (or a text of
    digits) as seconds since 1970, so `"submitted_at": 123` became 1970-01-01T00:02:03Z."""
    if isinstance(value, datetime | date):
        return value
    if not isinstance(value, str) or not _ISO_DAY.match(value):
        raise ValueError(
            "须为 ISO 8601 格式的文本，如 2020-06-04T15:30:00+08:00 / must be ISO 8601 text "
            "such as 2020-06-04T15:30:00+08:00, not a number"
        )
    return value


ChinaTime = Annotated[datetime, BeforeValidator(iso_text), AfterValidator(request_time)]
"""A time in a request body (docs/API.md): ISO text; without an offset, China time."""
IsoDate = Annotated[date, BeforeValidator(iso_text)]
"""A date in a request body, as ISO text (2020-09-30)."""

_EMOJI_FORMATS = frozenset({0x200D, *range(0xE0020, 0xE0080)})
"""Format characters emoji are made of: the zero-width joiner (👨‍👩‍👧) and the tag
characters of subdivision flags."""
_REFUSED = re.compile(
    "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\ud800-\\udfff"
    + "".join(
        re.escape(chr(code))
        # Unicode has format characters (Cf) in these planes only.
        for code in (*range(0x20000), *range(0xE0000, 0xE0080))
        if unicodedata.category(chr(code)) == "Cf" and code not in _EMOJI_FORMATS
    )
    + "]"
)


def text_problem(text: str) -> str | None:
    """Why a text from a request may not be stored, or None. Refused, not stripped, so that
    what is stored is what the caller sent: a lone surrogate (not Unicode: it cannot even be
    written to the store), a control character other than tab and line breaks (NUL among
    them), and an invisible format character such as the right-to-left override, which
    makes a title read differently from what it says. Emoji stay allowed."""
    # The usual text is printable: checked in C, 10x faster than the search for the reason.
    found = None if text.isprintable() else _REFUSED.search(text)
    if found is None:
        return None
    code = f"U+{ord(found.group()):04X}"
    category = unicodedata.category(found.group())
    if category == "Cs":
        return f"含无效的代理字符 {code} / contains a lone surrogate {code}, not Unicode text"
    if category == "Cc":
        return f"含控制字符 {code} / contains the control character {code}"
    return f"含不可见的格式字符 {code} / contains the invisible format character {code}"


def _check_text(value: Any) -> None:
    if isinstance(value, str):
        if (problem := text_problem(value)) is not None:
            raise ValueError(problem)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)


class RequestBody(BaseModel):
    """What every service's request bodies share: no unknown field, and no text that
    `text_problem` refuses, in any field (nested bodies check their own)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _printable_text(cls, value: Any) -> Any:
        _check_text(value)
        return value


def health_router(service: str, is_ready: Callable[[], str | None]) -> APIRouter:
    """`/healthz` answers while the process lives; `/readyz` names what is not ready yet.

    Both name the service, so a probe sent to the wrong port is not taken for an answer."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "service": service}

    @router.get("/readyz")
    def readyz(response: Response) -> dict[str, str]:
        """Ready to serve: connected to NATS and caught up with the store or streams."""
        problem = is_ready()
        if problem is not None:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return {"status": "not ready", "reason": problem, "service": service}
        return {"status": "ready", "service": service}

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


def _writable(value: Any) -> Any:
    """An error's echo of the input as JSON can carry: a lone surrogate as its escape, a NaN
    or an infinity (which Python's JSON reader accepts) as text. Without this, the answer
    to such a body was itself a 500."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [_writable(item) for item in value]
    if isinstance(value, dict):
        return {_writable(key): _writable(item) for key, item in value.items()}
    return value


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors: list[dict[str, Any]] = _writable(jsonable_encoder(error.errors()))
    fields = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors
    )
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "message": f"请求数据无效 / invalid request: {fields}",
            "detail": errors,
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
