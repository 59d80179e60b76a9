"""End-to-end fixtures: `shangliang up` as a real process, driven over HTTP as a user would
(tests/support/stack.py starts it)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest

from shared.auth import Authenticator
from shared.settings import Settings
from tests.conftest import fresh_postgres_schema, postgres_environment
from tests.support.processes import command_line, descendants, still_running
from tests.support.stack import STOP_TIMEOUT, RunningStack, launch_stack, wait_ready


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def event_store(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Every e2e module runs twice: event stores in SQLite files, then in PostgreSQL."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_postgres_schema() as schema:
        yield postgres_environment(schema)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, event_store: dict[str, str]
) -> Iterator[RunningStack]:
    """`python -m tools.cli up` on free ports; at the end it must stop cleanly, leaving no
    process behind."""
    running = launch_stack(tmp_path_factory.mktemp("stack"), event_store)
    process = running.process
    try:
        wait_ready(running)
        yield running
    finally:
        children = descendants(process.pid)
        started = [command_line(pid) for pid, _ in children]
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            for pid, _ in still_running(children):
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"shangliang up did not stop within {STOP_TIMEOUT}s")
        assert code == 0, running.launcher_output()
        assert len(children) == 7, f"expected nats-server and six services: {started}"
        assert still_running(children) == set(), "child processes outlived the launcher"


# --- tokens ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mint() -> Callable[..., str]:
    """Tokens signed with the keys the stack reads from the same environment; a `department`
    user's token names its department."""
    authenticator = Authenticator(Settings())

    def mint(office: str, *roles: str, department: str | None = None) -> str:
        return authenticator.mint(
            office, list(roles), subject=f"e2e-{office}", department=department
        )

    return mint
