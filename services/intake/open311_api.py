"""Intake's public side (居民渠道): Open311 GeoReport v2 and the tracking-code lookup.

Thin routes: parse, call one application method, answer in the spec's format. Every refusal
under /open311/ is the spec's error list `[{"code": ..., "description": ...}]`, in JSON or
XML after the path's suffix, whatever refused it (a field, a rule, a missing route).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.intake.api import Intake, _own_office
from services.intake.application import FINGERPRINT_DIGITS, IntakeApplication
from services.intake.open311 import (
    Open311Error,
    Open311Key,
    definition_xml,
    errors_xml,
    requests_xml,
    service,
    service_request,
    services_xml,
)
from services.intake.schemas import (
    KeyIssue,
    KeyIssued,
    KeyView,
    Open311Submission,
    PublicStatus,
)
from shared.auth import CurrentPrincipal, require_role
from shared.commands import IdempotencyConflict, fingerprint
from shared.web import IdempotencyKey, request_time

PREFIX = "/open311/v2"
SEARCH_DAYS = 90
"""The spec's default and widest window for a list of requests."""

Format = Annotated[Literal["json", "xml"], Path(description="json 或 xml")]
Jurisdiction = Annotated[
    str,
    Query(
        min_length=1, max_length=40, description="政协（office）, e.g. yanji", examples=["yanji"]
    ),
]
OptionalJurisdiction = Annotated[str | None, Query(min_length=1, max_length=40)]
Code = Annotated[str, Path(min_length=1, max_length=40)]
Moment = Annotated[
    str | None, Query(max_length=40, description="W3C, e.g. 2020-06-04T15:30:00+08:00")
]

router = APIRouter(prefix=PREFIX, tags=["open311"])
keys = APIRouter(prefix="/open311/keys", tags=["open311"])
track = APIRouter(tags=["track"])

ERROR_LIST = {
    "description": "Open311 错误列表 / the spec's error list",
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
                    "required": ["code", "description"],
                },
            }
        },
        "application/xml": {"schema": {"type": "string"}},
    },
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    code: ERROR_LIST for code in (400, 403, 404, 409, 413, 422, 429)
}
LIST = {
    "description": "JSON 或 XML / in the format the path names",
    "content": {
        "application/json": {"schema": {"type": ["array", "object"]}},
        "application/xml": {"schema": {"type": "string"}},
    },
}


async def offices(request: Request) -> frozenset[str]:
    found: frozenset[str] = request.app.state.offices
    return found


Offices = Annotated[frozenset[str], Depends(offices)]


def _answer(fmt: str, rows: Any, xml: bytes | None = None, code: int = 200) -> Response:
    if fmt == "xml":
        assert xml is not None
        return Response(xml, status_code=code, media_type="application/xml; charset=utf-8")
    return JSONResponse(rows, status_code=code)


def _office(known: frozenset[str], jurisdiction_id: str) -> str:
    if jurisdiction_id not in known:
        raise Open311Error(
            404, f"jurisdiction_id: 没有这个政协 / no such jurisdiction {jurisdiction_id}"
        )
    return jurisdiction_id


def _moment(field: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return request_time(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise Open311Error(400, f"{field}: 不是 W3C 时间 / not a W3C datetime") from None


@router.get("/services.{fmt}", responses={**ANSWERS, 200: LIST})
async def services(
    fmt: Format, jurisdiction_id: Jurisdiction, app: Intake, known: Offices
) -> Response:
    """GeoReport v2 service list: the office's issue categories (问题类别) as services."""
    office = _office(known, jurisdiction_id)
    rows = [service(office, c, app.attributes_of(office, c)) for c in app.categories_of(office)]
    return _answer(fmt, rows, services_xml(rows) if fmt == "xml" else None)


@router.get("/services/{service_code}.{fmt}", responses={**ANSWERS, 200: LIST})
async def service_definition(
    service_code: Code, fmt: Format, jurisdiction_id: Jurisdiction, app: Intake, known: Offices
) -> Response:
    """GeoReport v2 service definition: the typed attributes a category asks for."""
    office = _office(known, jurisdiction_id)
    if service_code not in app.categories_of(office):
        raise Open311Error(404, f"service_code: 没有这项服务 / no such service {service_code}")
    definition = {
        "service_code": service_code,
        "attributes": app.attributes_of(office, service_code),
    }
    return _answer(fmt, definition, definition_xml(definition) if fmt == "xml" else None)


FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 200


def _form_text(part: bytes) -> str:
    """One name or value of a form, percent-decoded by the C codecs: each `%XX` becomes a
    `\\xXX` escape (a literal backslash first becomes one too), read as bytes, then as UTF-8.
    The standard library's per-escape loop took four times as long for a Chinese text; a
    malformed escape or bytes that are not UTF-8 raise `UnicodeDecodeError`."""
    escaped = part.replace(b"+", b" ").replace(b"\\", b"\\x5c").replace(b"%", b"\\x")
    return escaped.decode("unicode_escape").encode("latin-1").decode()


def _submission(raw: bytes) -> tuple[Open311Submission, dict[str, str]]:
    """The spec's form fields, and the `attribute[code]` answers beside them. Read here rather
    than by the framework's multipart parser: the path residents' apps send most."""
    parts = [p for p in raw.split(b"&") if p]
    try:
        if len(parts) > MAX_FIELDS:
            raise ValueError
        pairs = [(_form_text(n), _form_text(v)) for n, _, v in (p.partition(b"=") for p in parts)]
    except (UnicodeDecodeError, ValueError):
        raise Open311Error(
            400,
            f"请求内容须为 UTF-8 表单，至多 {MAX_FIELDS} 项 / the body must be a UTF-8 "
            f"form of at most {MAX_FIELDS} fields",
        ) from None
    fields = {name: value for name, value in pairs if value != ""}
    attributes = {
        name[len("attribute[") : -1]: value
        for name, value in fields.items()
        if name.startswith("attribute[") and name.endswith("]")
    }
    try:
        return Open311Submission.model_validate(fields), attributes
    except ValidationError as invalid:
        described = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in invalid.errors()
        )
        raise Open311Error(400, described) from None


@router.post(
    "/requests.{fmt}",
    status_code=status.HTTP_201_CREATED,
    responses={**ANSWERS, 200: LIST, 201: LIST},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM: {"schema": Open311Submission.model_json_schema()}},
        }
    },
)
async def submit_request(
    fmt: Format,
    request: Request,
    app: Intake,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """GeoReport v2 POST service request: a resident's problem becomes an issue (来源：网络).

    `api_key` is an office's Open311 key (`shangliang open311 key issue`); a retry of the
    same request, or one with the same `Idempotency-Key` header, never makes a second issue.
    """
    rows, created = await requested(app, await request.body(), idempotency_key)
    return requested_answer(fmt, rows, created)


async def requested(
    app: IntakeApplication, raw: bytes, idempotency_key: str | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """The form's request recorded, and whether it is new (the route's and
    services/intake/hot.py's one call); a refusal raises `Open311Error`, nothing stored."""
    body, attributes = _submission(raw)
    office = app.cached_office_of_key(body.api_key) or await run_in_threadpool(
        app.office_of_key, body.api_key
    )
    if office is None:
        raise Open311Error(403, "api_key: 密钥无效 / the api_key is not valid")
    if body.jurisdiction_id is not None and body.jurisdiction_id != office:
        raise Open311Error(
            403, "jurisdiction_id: 与密钥所属政协不符 / the api_key belongs to another jurisdiction"
        )
    asked = body.model_dump(exclude={"api_key"}) | {"attributes": attributes}
    key = f"open311:{idempotency_key or fingerprint(office, asked, digits=FINGERPRINT_DIGITS)}"
    try:
        issue, created = await app.submit_request(
            office,
            body.service_code,
            body.description,
            attributes,
            body.location(),
            None if body.media_url is None else str(body.media_url),
            body.reporter_name(),
            body.phone,
            key,
        )
    except IdempotencyConflict:
        raise Open311Error(
            409, "Idempotency-Key 已用于另一个不同的请求 / the key was used for another request"
        ) from None
    rows = [
        {
            "service_request_id": str(issue.id),
            "token": app.tracking_code(issue),
            "service_notice": "请保存查询码以查询办理进度 / keep the token to follow the request",
            "account_id": None,
        }
    ]
    return rows, created


def requested_answer(fmt: str, rows: list[dict[str, Any]], created: bool) -> Response:
    """201 for a new request, 200 for a retry answered with the first one."""
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return _answer(fmt, rows, requests_xml(rows) if fmt == "xml" else None, code)


@router.get("/requests.{fmt}", responses={**ANSWERS, 200: LIST})
async def list_requests(
    fmt: Format,
    jurisdiction_id: Jurisdiction,
    app: Intake,
    known: Offices,
    service_request_id: Annotated[str | None, Query(max_length=4000)] = None,
    service_code: Annotated[str | None, Query(max_length=2000)] = None,
    start_date: Moment = None,
    end_date: Moment = None,
    status_: Annotated[str | None, Query(alias="status", max_length=20)] = None,
) -> Response:
    """GeoReport v2 GET service requests: the office's Open311 requests and their status;
    by default the last 90 days, never a window wider than that."""
    office = _office(known, jurisdiction_id)
    ids = None if service_request_id is None else _ids(service_request_id)
    statuses = None if status_ is None else _statuses(status_)
    end = _moment("end_date", end_date)
    start = _moment("start_date", start_date)
    end = end or (start + timedelta(days=SEARCH_DAYS) if start else datetime.now(UTC))
    start = start or end - timedelta(days=SEARCH_DAYS)
    if start > end:
        raise Open311Error(400, "start_date: 晚于 end_date / after end_date")
    if end - start > timedelta(days=SEARCH_DAYS):
        raise Open311Error(400, f"start_date: 查询范围不能超过 {SEARCH_DAYS} 天 / at most 90 days")
    codes = None if service_code is None else [c for c in service_code.split(",") if c]
    found = await run_in_threadpool(app.service_requests, office, ids, codes, start, end, statuses)
    rows = [service_request(i) for i in found]
    return _answer(fmt, rows, requests_xml(rows) if fmt == "xml" else None)


@router.get("/requests/{service_request_id}.{fmt}", responses={**ANSWERS, 200: LIST})
async def get_request(
    service_request_id: Code,
    fmt: Format,
    app: Intake,
    jurisdiction_id: OptionalJurisdiction = None,
) -> Response:
    """GeoReport v2 GET service request: one request's status, as a list of one."""
    found = await run_in_threadpool(
        app.service_requests,
        jurisdiction_id,
        _ids(service_request_id),
        None,
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
        None,
    )
    if not found:
        raise Open311Error(404, "service_request_id: 没有这个请求 / no such request")
    rows = [service_request(found[0])]
    return _answer(fmt, rows, requests_xml(rows) if fmt == "xml" else None)


@router.get("/tokens/{token}.{fmt}", responses={**ANSWERS, 200: LIST})
async def request_of_token(token: Code, fmt: Format, app: Intake) -> Response:
    """GeoReport v2 GET request id from a token (the tracking code, 查询码)."""
    found = await run_in_threadpool(app.track, token)
    if found is None:
        raise Open311Error(404, "token: 没有这个查询码 / no such token")
    rows = [{"service_request_id": str(found[0].id), "token": token}]
    return _answer(fmt, rows, requests_xml(rows) if fmt == "xml" else None)


def _ids(text: str) -> list[UUID]:
    try:
        return [UUID(part) for part in text.split(",") if part]
    except ValueError:
        raise Open311Error(400, "service_request_id: 不是请求编号 / not a request id") from None


def _statuses(text: str) -> list[str]:
    found = [s for s in text.split(",") if s]
    if not found or any(s not in ("open", "closed") for s in found):
        raise Open311Error(400, "status: 只能是 open 或 closed / open or closed")
    return found


# --- the office's Open311 keys ------------------------------------------------------------


@keys.post("", status_code=status.HTTP_201_CREATED, response_model=KeyIssued)
async def issue_key(body: KeyIssue, principal: CurrentPrincipal, app: Intake) -> KeyIssued:
    """Issue an Open311 key (接入密钥) for the caller's office; the key is shown only once."""
    require_role(principal, "admin")
    _own_office(principal, body.office, "发放密钥")
    api_key, record = await app.issue_open311_key(body.office, body.label)
    return KeyIssued(api_key=api_key, **_key_fields(record))


@keys.post("/{key_id}/revocation", response_model=KeyView)
async def revoke_key(key_id: UUID, principal: CurrentPrincipal, app: Intake) -> KeyView:
    """Revoke an Open311 key (吊销密钥) of the caller's office; again changes nothing."""
    require_role(principal, "admin")
    record = await run_in_threadpool(app.open311_key, key_id)
    if record is None or not principal.can_read(record.office):
        raise StarletteHTTPException(status.HTTP_404_NOT_FOUND, "没有这个密钥 / no such key")
    _own_office(principal, record.office, "吊销密钥")
    return KeyView(**_key_fields(await app.revoke_open311_key(key_id)))


def _key_fields(record: Open311Key) -> dict[str, Any]:
    return {
        "id": record.id,
        "office": record.office,
        "label": record.label,
        "issued_at": record.issued_at,
        "revoked_at": record.revoked_at,
    }


# --- 查询码: the public status lookup -------------------------------------------------------

_NO_CODE = "没有这个查询码 / no such tracking code"
TrackingCode = Annotated[str, Path(min_length=1, max_length=64)]


@track.get("/track/{code}", response_model=PublicStatus)
async def track_issue(
    code: TrackingCode, app: Intake, office: OptionalJurisdiction = None
) -> PublicStatus:
    """The public status of an issue by its tracking code (查询码): no personal data."""
    found = await run_in_threadpool(app.track, code, office)
    if found is None:
        raise StarletteHTTPException(status.HTTP_404_NOT_FOUND, _NO_CODE)
    return PublicStatus.of(*found)


@track.get("/track/{code}/page", response_class=HTMLResponse)
async def track_page(
    code: TrackingCode, app: Intake, office: OptionalJurisdiction = None
) -> HTMLResponse:
    """The same public status as a small page (办理进度查询)."""
    found = await run_in_threadpool(app.track, code, office)
    if found is None:
        return HTMLResponse(_page("未找到 / not found", f"<p>{_NO_CODE}</p>"), status_code=404)
    view = PublicStatus.of(*found)
    rows = "".join(
        f"<li><time>{html.escape(s['at'])}</time> {html.escape(s['text'])}"
        + (f"：{html.escape(s['department'])}" if s.get("department") else "")
        + (f"（期限 / deadline {html.escape(s['deadline'])}）" if s.get("deadline") else "")
        + "</li>"
        for s in view.timeline
    )
    body = (
        f"<p>类别 / category：{html.escape(view.category)}</p>"
        f"<p>状态 / status：<strong>{html.escape(view.status_text)}</strong></p>"
        f"<ol>{rows}</ol>"
    )
    return HTMLResponse(_page(f"办理进度 / progress: {html.escape(view.title)}", body))


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>body{{font-family:sans-serif;max-width:40rem;"
        "margin:2rem auto;padding:0 1rem;line-height:1.6}time{color:#555}</style></head>"
        f"<body><main><h1>{title}</h1>{body}</main></body></html>"
    )


# --- refusals in the spec's format ----------------------------------------------------------


def _spec_error(request: Request, code: int, description: str) -> Response:
    rows = [{"code": code, "description": description}]
    if request.url.path.endswith(".xml"):
        return Response(errors_xml(rows), status_code=code, media_type="application/xml")
    return JSONResponse(rows, status_code=code)


async def _open311_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, Open311Error)
    return _spec_error(request, error.code, error.description)


def install_open311_handlers(app: FastAPI) -> None:
    """Refusals under /open311/v2/ in the spec's error list; elsewhere as before."""
    validation = app.exception_handlers[RequestValidationError]
    refused = app.exception_handlers[StarletteHTTPException]

    async def invalid(request: Request, error: Exception) -> Response:
        if not request.url.path.startswith(PREFIX):
            return await validation(request, error)  # type: ignore[no-any-return]
        assert isinstance(error, RequestValidationError)
        # Open311 answers a bad field with 400, naming the field.
        described = "; ".join(
            f"{e['loc'][-1]}: {e['msg']}" if e["loc"] else e["msg"] for e in error.errors()
        )
        return _spec_error(request, 400, described)

    async def http_refusal(request: Request, error: Exception) -> Response:
        if not request.url.path.startswith(PREFIX):
            return await refused(request, error)  # type: ignore[no-any-return]
        assert isinstance(error, StarletteHTTPException)
        return _spec_error(request, error.status_code, str(error.detail))

    app.add_exception_handler(Open311Error, _open311_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_refusal)
