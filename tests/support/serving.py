"""An application as its service runs it: the group commit saving what the commands queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

from shared.eventstore import ServiceApplication

App = TypeVar("App", bound=ServiceApplication)


@contextlib.asynccontextmanager
async def serving(app: App) -> AsyncIterator[App]:
    """The application with its group commit running inside the block; closed after it."""
    group_commit = asyncio.create_task(app.group_commit.run())
    try:
        yield app
    finally:
        group_commit.cancel()
        await asyncio.gather(group_commit, return_exceptions=True)
        app.close()
