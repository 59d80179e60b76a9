"""Fixtures shared by every tier: real nats-server processes, real SQLite files, a real
PostgreSQL (a schema of each test's own, dropped after)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from nats.aio.client import Client

from shared.audit import acting
from shared.contracts import Actor
from shared.embedded import EmbeddedNats
from shared.messaging import connect
from shared.settings import Settings

POSTGRES = {
    "host": os.environ.get("SHANGLIANG_TEST_POSTGRES_HOST", "127.0.0.1"),
    "port": int(os.environ.get("SHANGLIANG_TEST_POSTGRES_PORT", "5432")),
    "user": os.environ.get("SHANGLIANG_TEST_POSTGRES_USER", "postgres"),
    "dbname": os.environ.get("SHANGLIANG_TEST_POSTGRES_DBNAME", "test"),
}
REQUIRE_POSTGRES = os.environ.get("SHANGLIANG_TEST_REQUIRE_POSTGRES") == "1"
"""CI sets it: there, a PostgreSQL that cannot be reached fails the run instead of skipping."""


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


@contextlib.contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """A fresh schema in the test database, dropped with everything in it afterwards, and so
    are the schemas named after it (a rebuilt read model's)."""
    try:
        admin = psycopg.connect(**POSTGRES, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at {POSTGRES['host']}:{POSTGRES['port']} unreachable: {error}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield schema
        finally:
            named = admin.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{schema}%",)
            ).fetchall()
            for (name,) in named:
                admin.execute(f"DROP SCHEMA {name} CASCADE")


def postgres_environment(schema: str) -> dict[str, str]:
    """The settings that put every event store in that schema."""
    return {
        "SHANGLIANG_EVENT_STORE": "postgres",
        "SHANGLIANG_POSTGRES_HOST": str(POSTGRES["host"]),
        "SHANGLIANG_POSTGRES_PORT": str(POSTGRES["port"]),
        "SHANGLIANG_POSTGRES_USER": str(POSTGRES["user"]),
        "SHANGLIANG_POSTGRES_DBNAME": str(POSTGRES["dbname"]),
        "SHANGLIANG_POSTGRES_SCHEMA": schema,
    }


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    with fresh_postgres_schema() as schema:
        yield schema


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for one persistence: each test that takes this runs on both."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    schema = request.getfixturevalue("postgres_schema")
    return postgres_settings(schema, data_dir=tmp_path / "data", event_store="postgres")


def postgres_settings(schema: str, **changes: Any) -> Settings:
    """Settings that reach the test PostgreSQL in `schema`, with `changes` on top."""
    return Settings(
        postgres_host=POSTGRES["host"],
        postgres_port=POSTGRES["port"],
        postgres_user=POSTGRES["user"],
        postgres_dbname=POSTGRES["dbname"],
        postgres_schema=schema,
        **changes,
    )


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Commands called inside act as `actor`, as a request's do once its token was checked."""
    token = acting.set(actor)
    try:
        yield
    finally:
        acting.reset(token)
