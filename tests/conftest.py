"""Fixtures shared by every tier: real nats-server processes, real SQLite files."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from shared.embedded import EmbeddedNats
from shared.messaging import connect


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, not from whatever shell runs the suite."""
    for name in os.environ:
        if name.startswith("SHANGLIANG_"):
            monkeypatch.delenv(name)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server of this test's own, on a free port: it may be killed and restarted."""
    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def nats_client(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    nc = await connect(nats_server.url, "test")
    try:
        yield nc
    finally:
        await nc.close()
