"""What the request limits (shared/limits.py) cost a request, in-process, no network.

Calls an ASGI app that answers fixed bytes, with and without `RequestLimits` in front, with a
bearer token (its signature check cached, as in the services) and a Content-Length, and
prints the microseconds the middleware adds per request. The rate is set so high that
nothing is refused: what is measured is the check every allowed request pays.

    python -m bench.limits_bench --requests 200000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Authenticator
from shared.limits import RequestLimits
from shared.settings import Settings


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b'{"ok": true}'})


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def timed(app: ASGIApp, scope: Scope, requests: int) -> tuple[float, int]:
    refused = 0

    async def send(message: Message) -> None:
        nonlocal refused
        if message["type"] == "http.response.start" and message["status"] != 200:
            refused += 1

    started = time.perf_counter()
    for _ in range(requests):
        await app(scope, receive, send)
    return time.perf_counter() - started, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    settings = Settings(rate_limit_per_second=1e9, rate_limit_burst=10**9)
    state = State()
    state.authenticator = Authenticator(settings)
    token = state.authenticator.mint("yanji", ["viewer"], subject="bench")
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/issues",
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", b"512"),
            (b"content-type", b"application/json"),
        ],
    }
    limited = RequestLimits(bare, settings, state)

    async def measure() -> tuple[tuple[float, int], tuple[float, int]]:
        await timed(limited, scope, 1000)
        return await timed(bare, scope, args.requests), await timed(limited, scope, args.requests)

    (without, _), (with_limits, refused) = asyncio.run(measure())
    assert refused == 0, f"{refused} requests refused"
    added = (with_limits - without) / args.requests * 1e6
    print(f"{args.requests} requests: bare {without:.3f} s, with limits {with_limits:.3f} s")
    print(f"the limits add {added:.2f} µs a request")


if __name__ == "__main__":
    main()
