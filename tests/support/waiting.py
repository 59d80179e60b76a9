"""Waiting with a timeout for an expected state, never sleeping and hoping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(
    condition: Callable[[], Awaitable[Any] | Any],
    timeout: float = 10.0,
    what: str = "the expected state",
) -> Any:
    """Poll until `condition` is truthy (it may be async); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            last_error = None
        except Exception as error:  # e.g. NATS not reachable yet
            last_error = error
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s (last error: {last_error!r})")
        await asyncio.sleep(0.01)
