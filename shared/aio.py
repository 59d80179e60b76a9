"""asyncio on Python 3.11: make a cancellation stick."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def check_cancelled() -> None:
    """Raise `CancelledError` if this task was asked to stop but runs on.

    On Python 3.11 `asyncio.wait_for`, which nats-py uses inside its requests, loses a
    cancellation that arrives as the awaited reply does: the task stays "cancelling" but goes
    on, and every later `asyncio.timeout` in it then turns its own expiry into a
    `TimeoutError`, so a loop of timeouts never stops. Long-running loops call this at each
    turn; a consumer told to stop then does stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def in_thread(func: Callable[..., T], /, *args: object) -> T:
    """`asyncio.to_thread`, but a cancellation waits for the thread to finish before it is
    raised. Cancelling the awaiting task does not stop the thread: without the wait, whoever
    cancelled (a service stopping, a test's teardown) went on to close the SQLite connection
    the thread was still reading, and sqlite3 crashed the process (a segmentation fault
    seen in the suite, in the relay's read of the notification log)."""
    running = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        while not running.done():
            try:
                await asyncio.shield(running)
            except asyncio.CancelledError:
                continue
            except Exception:
                break
        raise
