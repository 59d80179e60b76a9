"""Unit tier: the domain and applications on the library's in-memory persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.intake.application import IntakeApplication
from tests.support.serving import serving

IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@pytest.fixture
async def intake() -> AsyncIterator[IntakeApplication]:
    """Intake in memory, with its group commit running as the service runs it."""
    app = IntakeApplication(env=IN_MEMORY)
    async with serving(app):
        yield app
