"""`shangliang up` as a real process on free ports with a data folder of its own: started,
waited for, and addressed by its services' URLs (the e2e fixtures and bench/ use it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client

from shared.embedded import die_with_parent, free_port
from shared.messaging import connect
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


UP = (sys.executable, "-m", "tools.cli", "up", "--mail-sink")


def launch_stack(
    folder: Path,
    settings: dict[str, str],
    command: Sequence[str] = UP,
    nats_url: str | None = None,
) -> RunningStack:
    """`python -m tools.cli up` (or another launcher: `command`, its NATS at `nats_url`) on
    free ports with its data in `folder`, and `settings` on top of the defaults; not yet
    ready."""
    env = {**stack_environment(folder / "data"), **settings}
    output = folder / "launcher.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            list(command),
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
        nats_url=nats_url or f"nats://127.0.0.1:{env['SHANGLIANG_EMBEDDED_NATS_PORT']}",
        environment=env,
    )
