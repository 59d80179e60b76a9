"""Unit tier: the domain and applications on the library's in-memory persistence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.intake.application import IntakeApplication

IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.fixture
async def intake() -> AsyncIterator[IntakeApplication]:
    """Intake in memory, with its group commit running as the service runs it."""
    app = IntakeApplication(env=IN_MEMORY)
    group_commit = asyncio.create_task(app.group_commit.run())
    try:
        yield app
    finally:
        group_commit.cancel()
        await asyncio.gather(group_commit, return_exceptions=True)
        app.close()
