"""The shared request limits over real HTTP (uvicorn on a free port), with the limits set
low: 413 for a body over the limit, 429 with Retry-After for a token over its rate.
The access matrix (tests/e2e) checks that every service installs them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from shared.auth import Authenticator, CurrentPrincipal
from shared.limits import install_limits
from shared.settings import Settings
from shared.web import health_router, install_error_handlers
from tests.support.servers import ServerThread

LIMITS = Settings(
    max_body_bytes=1024, max_upload_bytes=4096, rate_limit_per_second=1, rate_limit_burst=3
)


def limited_app(stored: list[bytes]) -> FastAPI:
    """Built as the services build theirs: error handlers, authenticator, then the limits."""
    app = FastAPI()
    app.state.authenticator = Authenticator(LIMITS)
    install_error_handlers(app)
    install_limits(app, LIMITS, upload_prefixes=("/imports/",), public_prefixes=("/track/",))
    app.include_router(health_router("test", lambda: None))

    @app.get("/things")
    async def things(principal: CurrentPrincipal) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.post("/things")
    async def store(request: Request, principal: CurrentPrincipal) -> dict[str, int]:
        stored.append(await request.body())
        return {"stored": len(stored)}

    @app.post("/imports/things")
    async def upload(request: Request, principal: CurrentPrincipal) -> dict[str, int]:
        stored.append(await request.body())
        return {"stored": len(stored)}

    @app.get("/track/{code}")
    async def public(code: str) -> dict[str, str]:
        return {"code": code}

    return app


class Limited:
    def __init__(self, url: str, stored: list[bytes]) -> None:
        self.url = url
        self.stored = stored
        self.tokens = Authenticator(LIMITS)

    def who(self, subject: str) -> dict[str, str]:
        token = self.tokens.mint("yanji", ["clerk"], subject=subject)
        return {"Authorization": f"Bearer {token}"}

    def post(self, path: str, who: dict[str, str], **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", headers=who, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def limited() -> Iterator[Limited]:
    stored: list[bytes] = []
    server = ServerThread(limited_app(stored)).start()
    try:
        yield Limited(server.url, stored)
    finally:
        server.stop()


def test_a_body_over_the_limit_is_413_and_never_reaches_the_route(limited: Limited) -> None:
    who = limited.who("body-limit")
    before = len(limited.stored)
    refused = limited.post("/things", who, content=b"x" * 1025)
    assert refused.status_code == 413
    assert refused.json()["message"].startswith("请求内容超过 1024 字节的上限 / ")
    assert len(limited.stored) == before
    assert limited.post("/things", who, content=b"x" * 1024).status_code == 200


def test_a_chunked_body_is_counted_as_it_arrives(limited: Limited) -> None:
    who = limited.who("chunked")
    before = len(limited.stored)

    def chunks(count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield b"x" * 512

    refused = limited.post("/things", who, content=chunks(3))
    assert refused.status_code == 413, refused.text
    assert " / " in refused.json()["message"]
    assert len(limited.stored) == before
    assert limited.post("/things", who, content=chunks(2)).status_code == 200


def test_an_upload_route_takes_the_larger_limit(limited: Limited) -> None:
    who = limited.who("upload")
    assert limited.post("/imports/things", who, content=b"x" * 4096).status_code == 200
    assert limited.post("/imports/things", who, content=b"x" * 4097).status_code == 413
    assert limited.post("/things", who, content=b"x" * 2048).status_code == 413


def test_a_token_over_its_rate_gets_429_with_retry_after_and_others_go_on(
    limited: Limited,
) -> None:
    busy, other = limited.who("busy"), limited.who("other")
    answers = [httpx.get(f"{limited.url}/things", headers=busy) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["message"].startswith("请求过于频繁")
    assert " / too many requests" in refused.json()["message"]

    assert httpx.get(f"{limited.url}/things", headers=other).status_code == 200
    # The limit is per subject: a fresh token of the same user shares the bucket.
    assert httpx.get(f"{limited.url}/things", headers=limited.who("busy")).status_code == 429

    deadline = time.monotonic() + int(refused.headers["Retry-After"]) + 1
    while (answer := httpx.get(f"{limited.url}/things", headers=busy)).status_code == 429:
        assert time.monotonic() < deadline, "still limited after Retry-After"
        time.sleep(0.05)
    assert answer.status_code == 200


def test_a_request_without_a_valid_token_is_left_to_the_route(limited: Limited) -> None:
    for _ in range(5):
        answer = httpx.get(f"{limited.url}/things", headers={"Authorization": "Bearer forged"})
        assert answer.status_code == 401
    assert httpx.get(f"{limited.url}/healthz").status_code == 200


def test_a_public_route_without_a_token_is_limited_per_client_address(limited: Limited) -> None:
    answers = [httpx.get(f"{limited.url}/track/code-{n}") for n in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    # A token's own bucket is not the address's.
    assert httpx.get(f"{limited.url}/things", headers=limited.who("reader")).status_code == 200
