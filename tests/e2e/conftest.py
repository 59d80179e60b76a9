"""End-to-end fixtures: `shangliang up` as a real process, driven over HTTP as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from shared.auth import Authenticator
from shared.embedded import die_with_parent, free_port
from shared.messaging import connect
from shared.settings import Settings
from tests.conftest import fresh_postgres_schema, postgres_environment
from tools.launcher import PASSWORDS_FILE

ROOT = Path(__file__).resolve().parents[2]
SHANGLIANG = Path(sys.executable).parent / "shangliang"
START_TIMEOUT = 60.0  # six services starting at once on a loaded 2-core machine
STOP_TIMEOUT = 15.0


def shangliang(*args: str) -> list[str]:
    """The installed console script, or the module when the project is not installed."""
    if SHANGLIANG.exists():
        return [str(SHANGLIANG), *args]
    return [sys.executable, "-m", "tools.cli", *args]


def stack_environment(data_dir: Path) -> dict[str, str]:
    """A stack of its own: a fresh data folder and free ports for every server."""
    return {
        **os.environ,
        "SHANGLIANG_DATA_DIR": str(data_dir),
        "SHANGLIANG_EMBEDDED_NATS_PORT": str(free_port()),
        "SHANGLIANG_INTAKE_HOST": "127.0.0.1",
        "SHANGLIANG_INTAKE_PORT": str(free_port()),
        "SHANGLIANG_MEETINGS_HOST": "127.0.0.1",
        "SHANGLIANG_MEETINGS_PORT": str(free_port()),
        "SHANGLIANG_SUPERVISION_HOST": "127.0.0.1",
        "SHANGLIANG_SUPERVISION_PORT": str(free_port()),
        "SHANGLIANG_PROJECTIONS_HOST": "127.0.0.1",
        "SHANGLIANG_PROJECTIONS_PORT": str(free_port()),
        "SHANGLIANG_NOTIFICATIONS_HOST": "127.0.0.1",
        "SHANGLIANG_NOTIFICATIONS_PORT": str(free_port()),
        "SHANGLIANG_CONSOLE_HOST": "127.0.0.1",
        "SHANGLIANG_CONSOLE_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }


# --- processes, read from /proc (no psutil) ---------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> set[tuple[int, int]]:
    """Every process below `root`, as (pid, start time) so that a reused pid is not mistaken."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[1], []).append((int(entry.name), stat[2]))
    found: set[tuple[int, int]] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return f"{pid} (gone)"


def still_running(processes: set[tuple[int, int]]) -> set[tuple[int, int]]:
    alive = set()
    for pid, started in processes:
        stat = _stat(pid)
        if stat is not None and stat[2] == started and stat[0] != "Z":
            alive.add((pid, started))
    return alive


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line or environment names `text` (e.g. a stack's data folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob and (stat := _stat(int(entry.name))) and stat[0] != "Z":
            found.append(int(entry.name))
    return found


# --- the running stack --------------------------------------------------------------------------


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    output: Path
    data_dir: Path
    intake: str
    meetings: str
    supervision: str
    projections: str
    notifications: str
    console: str
    nats_url: str
    environment: dict[str, str]
    """The settings the stack was started with (the CLI run against it needs the same)."""

    def launcher_output(self) -> str:
        return self.output.read_text(errors="replace")

    async def connect_as(self, user: str) -> Client:
        """Connect to the stack's nats-server as one of its users, with the password the
        launcher generated into the data folder."""
        passwords = json.loads((self.data_dir / PASSWORDS_FILE).read_text())
        return await connect(self.nats_url, f"e2e-{user}", user, passwords[user])


def wait_ready(stack: RunningStack, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    waiting = [
        stack.intake,
        stack.meetings,
        stack.supervision,
        stack.projections,
        stack.notifications,
        stack.console,
    ]
    while waiting:
        if stack.process.poll() is not None:
            code = stack.process.returncode
            pytest.fail(f"shangliang up exited with {code}:\n{stack.launcher_output()}")
        for url in list(waiting):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    waiting.remove(url)
            except httpx.HTTPError:
                pass
        if waiting and time.monotonic() > deadline:
            pytest.fail(f"not ready within {timeout}s: {waiting}\n{stack.launcher_output()}")
        time.sleep(0.05)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def event_store(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Every e2e module runs twice: event stores in SQLite files, then in PostgreSQL."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_postgres_schema() as schema:
        yield postgres_environment(schema)


def launch_stack(folder: Path, settings: dict[str, str]) -> RunningStack:
    """`python -m tools.cli up` on free ports with its data in `folder`, and `settings`
    on top of the defaults; not yet ready."""
    env = {**stack_environment(folder / "data"), **settings}
    output = folder / "launcher.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "up", "--mail-sink"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    return RunningStack(
        process=process,
        output=output,
        data_dir=folder / "data",
        intake=f"http://127.0.0.1:{env['SHANGLIANG_INTAKE_PORT']}",
        meetings=f"http://127.0.0.1:{env['SHANGLIANG_MEETINGS_PORT']}",
        supervision=f"http://127.0.0.1:{env['SHANGLIANG_SUPERVISION_PORT']}",
        projections=f"http://127.0.0.1:{env['SHANGLIANG_PROJECTIONS_PORT']}",
        notifications=f"http://127.0.0.1:{env['SHANGLIANG_NOTIFICATIONS_PORT']}",
        console=f"http://127.0.0.1:{env['SHANGLIANG_CONSOLE_PORT']}",
        nats_url=f"nats://127.0.0.1:{env['SHANGLIANG_EMBEDDED_NATS_PORT']}",
        environment=env,
    )


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


# --- tokens and requests ------------------------------------------------------------------------


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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue_body(office: str = "yanji", year: int = 2020, **changes: Any) -> dict[str, Any]:
    body = {
        "office": office,
        "title": "小区路灯损坏",
        "description": f"进学街道某小区路灯夜间不亮 ({uuid.uuid4().hex[:8]})",
        "category": "城市管理",
        "submitted_at": f"{year}-06-04T15:30:00+08:00",
    }
    body.update(changes)
    return body
