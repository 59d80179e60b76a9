"""The hot write (热点直通): a plain `POST /issues` handled before FastAPI's routing.

Recording issues is intake's busiest request. Profiled under load (bench/profile_intake.py),
FastAPI's routing, dependency solving and response handling took several times what the
request's own work does (checking, storing, answering). This ASGI layer sits where the
route would be reached, inside the metrics and request-limit middlewares, and does what the
route does with the route's own parts: the bearer token through the same authenticator, the
same role and office checks (`require_role`, which also records the role for the audit),
the body decoded as FastAPI decodes it and validated by the same model, the same application
method, the same answer model.

It takes only the plainest form of the request: exactly `/issues`, no query string, a JSON
body of a declared length, a bearer token, no Idempotency-Key. Anything else, and any check
that refuses, goes on to the API with the body it read, which answers as always (401, 403,
422, an idempotent retry): nothing was stored on the way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.intake.api import _own_office, issue_view, submitted
from services.intake.rules import IssueRuleBroken
from services.intake.schemas import IssueSubmission
from shared.auth import Principal, TokenError, require_role

_PATH = "/issues"
_AUTHORIZATION = b"authorization"
_CONTENT_LENGTH = b"content-length"
_CONTENT_TYPE = b"content-type"
_IDEMPOTENCY_KEY = b"idempotency-key"
_JSON = (b"application/json", b"application/json; charset=utf-8")


@dataclass(frozen=True)
class _Route:
    """What the metrics middleware reads of a matched route."""

    path: str = _PATH


_ROUTE = _Route()


class HotSubmission:
    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = self._plain(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        body, complete = await _read(receive)
        if complete:
            answer = await self._submit(token, body)
            if answer is not None:
                scope["route"] = _ROUTE
                await _send(send, *answer)
                return
        await self.app(scope, _replay(body, complete, receive), send)

    def _plain(self, scope: Scope) -> str | None:
        """The bearer token of a plain `POST /issues` with a JSON body, else None."""
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != _PATH
            or scope["query_string"]
        ):
            return None
        headers = dict(scope["headers"])
        if len(headers) != len(scope["headers"]) or _IDEMPOTENCY_KEY in headers:
            return None  # a repeated header, or a retry: the API's own handling
        length = headers.get(_CONTENT_LENGTH)
        if length is None or not length.isdigit() or headers.get(_CONTENT_TYPE) not in _JSON:
            return None
        # As FastAPI's HTTPBearer reads the header.
        scheme, _, token = headers.get(_AUTHORIZATION, b"").decode("latin-1").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None

    async def _submit(self, token: str, body: bytes) -> tuple[int, bytes, str] | None:
        """Status, answer and Location of a submission every check accepts; else None."""
        try:
            principal: Principal = self.state.authenticator.verify(token)
            require_role(principal, "clerk")
            # As FastAPI decodes and validates a JSON body (ValidationError, JSONDecodeError
            # and UnicodeDecodeError are ValueErrors).
            submission = IssueSubmission.model_validate(json.loads(body))
            _own_office(principal, submission.office, "登记问题")
        except (TokenError, HTTPException, ValueError):
            return None  # the API refuses it and says why
        try:
            issue, created = await submitted(self.state.intake, submission)
        except IssueRuleBroken:
            return None  # refused before anything was stored: the API says why
        view = issue_view(self.state.intake, principal, issue)
        return 201 if created else 200, view.model_dump_json().encode(), f"/issues/{issue.id}"


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


async def _send(send: Send, status: int, body: bytes, location: str) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
        (b"location", location.encode()),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
