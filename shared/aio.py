"""asyncio on Python 3.11: make a cancellation stick."""

from __future__ import annotations

import asyncio


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
