"""A cancelled wait for a thread ends only when the thread has (shared/aio.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from shared.aio import in_thread


async def test_a_cancelled_wait_for_a_thread_returns_only_once_the_thread_is_done() -> None:
    started, done = threading.Event(), threading.Event()

    def slow_read() -> str:
        started.set()
        time.sleep(0.3)
        done.set()
        return "rows"

    task = asyncio.create_task(in_thread(slow_read))
    await asyncio.to_thread(started.wait)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # What cancelled it may now close the store the thread was reading.
    assert done.is_set()


async def test_an_uncancelled_wait_answers_what_the_thread_returned() -> None:
    assert await in_thread(sum, [1, 2, 3]) == 6
