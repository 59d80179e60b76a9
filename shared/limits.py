"""Request limits (请求限制) every service applies: the size of a request body (413) and
the rate of requests per token (429).

The rate is kept per token subject in a token bucket of this process: with several replicas
each counts on its own, so the effective limit is the setting times the replicas. It is a
guard against a runaway client, not a quota; the default is far above what the demo, the
benches and the tests send with one token.
"""

from __future__ import annotations

import json
import math
import time
from urllib.parse import parse_qs

from fastapi import FastAPI, status
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import TokenError
from shared.settings import Settings

_CONTENT_LENGTH = b"content-length"
_AUTHORIZATION = b"authorization"
_BEARER = b"bearer "


def too_large(limit: int) -> str:
    return (
        f"请求内容超过 {limit} 字节的上限 / the request body is larger than the limit of "
        f"{limit} bytes"
    )


class TokenBuckets:
    """A bucket per token subject: `burst` requests at once, refilled at `rate` a second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._prune_at = 10_000
        # A bucket untouched this long is full again and can be forgotten.
        self._idle = burst / rate

    def take(self, subject: str) -> float:
        """Takes one request from the subject's bucket: 0, or the seconds until one is free."""
        now = time.monotonic()
        tokens, updated = self._buckets.get(subject, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens < 1:
            self._buckets[subject] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[subject] = (tokens - 1, now)
        if len(self._buckets) > 10_000:
            self._forget_idle(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        self._buckets = {s: (t, u) for s, (t, u) in self._buckets.items() if now - u < self._idle}


class RequestLimits:
    """ASGI middleware: 413 for a body over the limit, 429 with Retry-After for a token over
    its rate. Plain ASGI, like the metrics middleware, as it sits in front of the hot paths."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        state: State,
        upload_prefixes: tuple[str, ...] = (),
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.public_prefixes = public_prefixes
        self.state = state
        self.max_body = settings.max_body_bytes
        self.max_upload = settings.max_upload_bytes
        self.upload_prefixes = upload_prefixes
        self.buckets = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wait = self._rate_limited(scope)
        if wait:
            seconds = max(1, math.ceil(wait))
            reason = (
                f"请求过于频繁，请 {seconds} 秒后重试 / too many requests with this token; "
                f"retry in {seconds} s"
            )
            await _answer(send, status.HTTP_429_TOO_MANY_REQUESTS, reason, seconds)
            return
        limit = (
            self.max_upload
            if self.upload_prefixes and scope["path"].startswith(self.upload_prefixes)
            else self.max_body
        )
        length = next((v for k, v in scope["headers"] if k == _CONTENT_LENGTH), None)
        if length is not None:
            if length.isdigit() and int(length) > limit:
                await _answer(send, status.HTTP_413_CONTENT_TOO_LARGE, too_large(limit))
                return
            await self.app(scope, receive, send)
            return
        await self.app(scope, _counted(receive, limit), send)

    def _rate_limited(self, scope: Scope) -> float:
        token = _token_of(scope)
        if token is None:
            if self.public_prefixes and scope["path"].startswith(self.public_prefixes):
                # Routes without a token (a resident's lookup, an Open311 client) are
                # counted per client address instead.
                client = scope.get("client")
                return self.buckets.take(f"address:{client[0] if client else '?'}")
            return 0.0
        try:
            subject = self.state.authenticator.verify(token).subject
        except TokenError:
            return 0.0  # the route answers 401
        return self.buckets.take(subject)


def _token_of(scope: Scope) -> str | None:
    """The bearer token, or a calendar URL's `?token=`."""
    for key, value in scope["headers"]:
        if key == _AUTHORIZATION and value[:7].lower() == _BEARER:
            return str(value[7:].decode("latin-1"))
    query: bytes = scope["query_string"]
    if b"token=" in query:
        found = parse_qs(query.decode("latin-1")).get("token")
        return found[0] if found else None
    return None


def _counted(receive: Receive, limit: int) -> Receive:
    """A body sent without Content-Length (chunked) is counted as it arrives; the route's
    reading of it fails with 413 once it passes the limit, before anything is stored."""
    seen = 0

    async def counting() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, too_large(limit))
        return message

    return counting


async def _answer(send: Send, code: int, reason: str, retry_after: int | None = None) -> None:
    body = json.dumps({"message": reason, "detail": reason}, ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The body was not read: the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_limits(
    app: FastAPI,
    settings: Settings,
    upload_prefixes: tuple[str, ...] = (),
    public_prefixes: tuple[str, ...] = (),
) -> None:
    """Body size and rate limits; routes under `upload_prefixes` take spreadsheets, so the
    larger upload limit; routes under `public_prefixes` take no token, so their rate is
    counted per client address. Installed inside the metrics middleware, so refusals are
    counted."""
    app.add_middleware(
        RequestLimits,
        settings=settings,
        state=app.state,
        upload_prefixes=upload_prefixes,
        public_prefixes=public_prefixes,
    )
