"""The hot writes (热点直通): a plain `POST /issues` and a plain Open311 POST handled before
FastAPI's routing.

Recording issues is intake's busiest request, by staff (`POST /issues`) and by residents'
apps (`POST /open311/v2/requests.json`). Profiled under load (bench/profile_intake.py,
`bench.open311_bench --profile`), FastAPI's routing, dependency solving and response
handling took several times what the request's own work does (checking, storing,
answering). This ASGI layer sits where the route would be reached, inside the metrics and
request-limit middlewares, and does what the route does with the route's own parts. For
`POST /issues`: the bearer token through the same authenticator, the same role and office
checks (`require_role`, which also records the role for the audit), the body decoded as
FastAPI decodes it and validated by the same model, the same application method, the same
answer model. For Open311: the route's own call (`requested`: the form, the `api_key`, the
fingerprint that makes a retry answer with the first issue) and its own answer.

It takes only the plainest form of each request: exactly the path, no query string, a body
of a declared length and the type the route reads, no repeated header, no Idempotency-Key.
Anything else, any check that refuses and a store that fails goes on to the API with the
body it read, which answers as always (401, 403, 422, the spec's error list, an idempotent
retry, 503 for a full disk): nothing was stored on the way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from eventsourcing.persistence import PersistenceError
from fastapi import HTTPException
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.intake.api import _own_office, issue_view, submitted
from services.intake.open311 import Open311Error
from services.intake.open311_api import FORM, PREFIX, requested, requested_answer
from services.intake.rules import IssueRuleBroken
from services.intake.schemas import IssueSubmission
from shared.auth import Principal, TokenError, require_role

Headers = Mapping[bytes, bytes]
Admitted = TypeVar("Admitted")

_AUTHORIZATION = b"authorization"
_CONTENT_LENGTH = b"content-length"
_CONTENT_TYPE = b"content-type"
_IDEMPOTENCY_KEY = b"idempotency-key"


class HotRoute(Generic[Admitted]):
    """One request the layer answers itself. `path` is the API route's template: the metrics
    middleware reads it from `scope["route"]`, so both answers count under one series."""

    path: str
    content_types: frozenset[bytes]

    def admits(self, headers: Headers) -> Admitted | None:
        """What the headers bring that the answer needs (a token), or None: the API's."""
        raise NotImplementedError

    async def answer(self, state: State, admitted: Admitted, body: bytes) -> Response | None:
        """The route's answer when every check accepts and the request is recorded; else
        None, with nothing stored."""
        raise NotImplementedError


class HotPath:
    """The ASGI layer: a request one of its routes takes is answered here, else it goes on."""

    def __init__(
        self, app: ASGIApp, state: State, routes: Mapping[str, HotRoute[Any]] | None = None
    ) -> None:
        self.app = app
        self.state = state
        self.routes = HOT_ROUTES if routes is None else routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        admitted = None if route is None else _admitted(route, scope)
        if route is None or admitted is None:
            await self.app(scope, receive, send)
            return
        body, complete = await _read(receive)
        if complete:
            try:
                response = await route.answer(self.state, admitted, body)
            except (PersistenceError, OSError):
                response = None  # rolled back: the API tries again and answers (503 if full)
            if response is not None:
                scope["route"] = route
                await response(scope, receive, send)
                return
        await self.app(scope, _replay(body, complete, receive), send)


def _admitted(route: HotRoute[Admitted], scope: Scope) -> Admitted | None:
    """The route's admission of a plain POST with a body of declared length, else None."""
    if scope["method"] != "POST" or scope["query_string"]:
        return None
    headers = dict(scope["headers"])
    if len(headers) != len(scope["headers"]) or _IDEMPOTENCY_KEY in headers:
        return None  # a repeated header, or a retry: the API's own handling
    length = headers.get(_CONTENT_LENGTH)
    if length is None or not length.isdigit():
        return None
    if headers.get(_CONTENT_TYPE) not in route.content_types:
        return None
    return route.admits(headers)


class _IssueSubmission(HotRoute[str]):
    """`POST /issues`, by a clerk's bearer token, as `api.submit_issue` answers it."""

    path = "/issues"
    content_types = frozenset({b"application/json", b"application/json; charset=utf-8"})

    def admits(self, headers: Headers) -> str | None:
        # As FastAPI's HTTPBearer reads the header.
        scheme, _, token = headers.get(_AUTHORIZATION, b"").decode("latin-1").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None

    async def answer(self, state: State, admitted: str, body: bytes) -> Response | None:
        try:
            principal: Principal = state.authenticator.verify(admitted)
            require_role(principal, "clerk")
            # As FastAPI decodes and validates a JSON body (ValidationError, JSONDecodeError
            # and UnicodeDecodeError are ValueErrors).
            submission = IssueSubmission.model_validate(json.loads(body))
            _own_office(principal, submission.office, "登记问题")
        except (TokenError, HTTPException, ValueError):
            return None  # the API refuses it and says why
        try:
            issue, created = await submitted(state.intake, submission)
        except IssueRuleBroken:
            return None  # refused before anything was stored: the API says why
        view = issue_view(state.intake, principal, issue)
        return Response(
            view.model_dump_json(),
            201 if created else 200,
            headers={"location": f"/issues/{issue.id}"},
            media_type="application/json",
        )


class _Open311Request(HotRoute[bool]):
    """`POST /open311/v2/requests.{fmt}`, the spec's form with an `api_key`, as
    `open311_api.submit_request` answers it: the very bytes, by the same function."""

    path = f"{PREFIX}/requests.{{fmt}}"
    content_types = frozenset({FORM.encode(), f"{FORM}; charset=utf-8".encode()})

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt

    def admits(self, headers: Headers) -> bool:
        return True  # the credential is in the form

    async def answer(self, state: State, admitted: bool, body: bytes) -> Response | None:
        try:
            rows, created = await requested(state.intake, body)
        except Open311Error:
            return None  # refused before anything was stored: the API answers in the spec's list
        return requested_answer(self.fmt, rows, created)


HOT_ROUTES: Mapping[str, HotRoute[Any]] = {
    "/issues": _IssueSubmission(),
    f"{PREFIX}/requests.json": _Open311Request("json"),
    f"{PREFIX}/requests.xml": _Open311Request("xml"),
}
"""Each exact path the layer takes, and its route."""


async def _read(receive: Receive) -> tuple[bytes, bool]:
    """The request body; False if the client went away before it was complete."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """The body already read, then whatever the client sends next."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": not complete}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
