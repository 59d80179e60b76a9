"""Integration tier: a real nats-server of each test's own, real SQLite files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.intake.application import IntakeApplication
from services.projections.views import IssueStatusView, open_issue_status_view
from shared.messaging import ensure_stream
from shared.settings import Settings
from shared.streams import INTAKE_STREAM


@pytest.fixture
async def js(nats_client: Client) -> JetStreamContext:
    """JetStream with intake's stream created."""
    context = nats_client.jetstream()
    await ensure_stream(context, INTAKE_STREAM)
    return context


@pytest.fixture
def intake(store_settings: Settings) -> Iterator[IntakeApplication]:
    """Intake's event store of this test's own: a SQLite file, then a PostgreSQL schema."""
    app = IntakeApplication(env=store_settings.event_store_env("intake"))
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def open_view(tmp_path: Path) -> Iterator[Callable[[str], IssueStatusView]]:
    """Opens issue status views in SQLite files of this test's own; closes them at the end."""
    opened: list[IssueStatusView] = []

    def open_one(name: str) -> IssueStatusView:
        opened.append(open_issue_status_view(str(tmp_path / f"{name}.sqlite")))
        return opened[-1]

    try:
        yield open_one
    finally:
        for view in opened:
            view.datastore.close()


async def stop(*tasks: asyncio.Task[object]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def background() -> AsyncIterator[list[asyncio.Task[object]]]:
    """Tasks a test starts (relays, consumers); cancelled at the end whatever happens."""
    tasks: list[asyncio.Task[object]] = []
    try:
        yield tasks
    finally:
        await stop(*tasks)
