"""The one-machine launcher (一键启动): embedded nats-server, each service in its own process."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
import nats.errors

from services.console.settings import ConsoleSettings
from shared.embedded import EmbeddedNats, die_with_parent, free_port, passwords_from_file
from shared.settings import (
    IntakeSettings,
    MeetingsSettings,
    ProjectionsSettings,
    ServiceSettings,
    Settings,
    SupervisionSettings,
)


@dataclass(frozen=True)
class ServiceSpec:
    """A service the launcher runs: the module to execute, the settings saying where it listens."""

    name: str
    label: str
    module: str
    settings: type[ServiceSettings]
    upstreams: tuple[str, ...] = ()
    """Services it calls over HTTP: their URLs reach it as `<prefix><NAME>_URL`."""
    uses_nats: bool = True


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("intake", "问题收集", "services.intake.main", IntakeSettings),
    ServiceSpec("meetings", "协商会议", "services.meetings.main", MeetingsSettings),
    ServiceSpec("supervision", "督办", "services.supervision.main", SupervisionSettings),
    ServiceSpec("projections", "查询统计", "services.projections.main", ProjectionsSettings),
    ServiceSpec(
        "console",
        "工作台",
        "services.console.main",
        ConsoleSettings,
        upstreams=("intake", "meetings", "supervision", "projections"),
        uses_nats=False,
    ),
)
"""Started in this order, stopped in the reverse order."""


PASSWORDS_FILE = "nats-passwords.json"
"""In the data folder: every NATS user's password, generated on the first start."""


class LaunchError(RuntimeError):
    """The stack could not start, or a part of it died; the message is meant for the user."""


class Interrupted(Exception):
    """A stop was asked for (Ctrl-C, SIGTERM) before the stack was up."""


def print_flushed(text: str) -> None:
    # Flushed at once: the launcher's output is often a pipe or a file, read while it runs.
    print(text, flush=True)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        # uvicorn binds with SO_REUSEADDR too: a port left in TIME_WAIT by the last run is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def _probe_host(host: str) -> str:
    """Where to reach a server that listens on `host`: a wildcard address is reached locally."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


class ServiceProcess:
    """One service as a child process, its output in a log file."""

    def __init__(self, spec: ServiceSpec, host: str, port: int, log_path: Path) -> None:
        self.spec = spec
        self.host = host
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def url(self) -> str:
        return f"http://{_probe_host(self.host)}:{self.port}"

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_start = log.tell()
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.spec.module],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
                # Its own process group: Ctrl-C in the terminal reaches only the launcher, which
                # then stops the services in order instead of all at once.
                process_group=0,
            )

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def terminate(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.terminate()

    def wait_or_kill(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 20) -> str:
        """The last lines this run wrote to the log (earlier runs append to the same file)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                text = log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Stack:
    """The embedded nats-server and the services: started together, watched, stopped together."""

    def __init__(
        self,
        settings: Settings,
        services: Sequence[ServiceSpec] = SERVICES,
        ready_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        say: Callable[[str], None] = print_flushed,
    ) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.say = say
        self.stopping = threading.Event()
        self.nats = EmbeddedNats(self.data_dir / "nats", port=settings.embedded_nats_port)
        self.services = [
            self._process_for(spec, spec.settings(), self.data_dir / "logs") for spec in services
        ]

    @staticmethod
    def _process_for(spec: ServiceSpec, config: ServiceSettings, logs: Path) -> ServiceProcess:
        # Port 0 would let the service pick one the launcher cannot know: pick it here instead.
        port = config.port or free_port(_probe_host(config.host))
        return ServiceProcess(spec, config.host, port, logs / f"{spec.name}.log")

    @property
    def started(self) -> bool:
        """Whether anything was started that `stop` must stop."""
        return self.nats.process is not None or any(s.process for s in self.services)

    def service(self, name: str) -> ServiceProcess:
        return next(s for s in self.services if s.spec.name == name)

    def stop_on_signals(self) -> None:
        """SIGINT and SIGTERM ask for a clean stop instead of killing the launcher midway."""

        def request_stop(_signum: int, _frame: FrameType | None) -> None:
            self.stopping.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def start(self) -> None:
        """Start everything and wait until each service is ready; raise if anything fails."""
        self._refuse_busy_ports()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Each service connects as its own user (shared/nats_access.py), never anonymously.
        self.nats.passwords = passwords_from_file(self.data_dir / PASSWORDS_FILE)
        try:
            self.nats.start()
            self.nats.set_up_blocking(self.settings)
        except (OSError, RuntimeError, TimeoutError, nats.errors.Error) as error:
            raise LaunchError(
                f"nats-server 启动失败 / nats-server did not start: {error}"
            ) from error
        self.say(f"nats-server 已启动 / started: {self.nats.url}")
        self._check_interrupted()
        for service in self.services:
            service.start(self._environment(service))
        self._wait_ready()

    def _refuse_busy_ports(self) -> None:
        wanted = [(s.spec.name, s.host, s.port) for s in self.services]
        if self.settings.embedded_nats_port:
            wanted.append(("nats-server", self.nats.host, self.nats.port))
        busy = [f"{name} {host}:{port}" for name, host, port in wanted if port_in_use(host, port)]
        if busy:
            raise LaunchError(
                f"端口已被占用 / port already in use: {', '.join(busy)}. "
                "可能已有一个 shangliang 在运行，或用 SHANGLIANG_<SERVICE>_PORT 换一个端口 / "
                "another shangliang may be running; or choose another port with "
                "SHANGLIANG_<SERVICE>_PORT"
            )

    def _environment(self, service: ServiceProcess) -> dict[str, str]:
        prefix = service.spec.settings.model_config.get("env_prefix", "")
        assert self.nats.passwords is not None, "set when the stack starts"
        # The child needs the whole environment (PATH, locale, SHANGLIANG_* keys), not only ours.
        nats = (
            {
                "SHANGLIANG_NATS_URL": self.nats.url,
                "SHANGLIANG_NATS_USER": service.spec.name,
                "SHANGLIANG_NATS_PASSWORD": self.nats.passwords[service.spec.name],
            }
            if service.spec.uses_nats
            else {}
        )
        upstreams = {
            f"{prefix}{name.upper()}_URL": self.service(name).url for name in service.spec.upstreams
        }
        return {
            **os.environ,
            **nats,
            **upstreams,
            "SHANGLIANG_DATA_DIR": str(self.data_dir),
            f"{prefix}HOST": service.host,
            f"{prefix}PORT": str(service.port),
            "PYTHONUNBUFFERED": "1",
        }

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        waiting = list(self.services)
        while waiting:
            self._check_interrupted()
            for service in list(waiting):
                self._raise_if_dead(service)
                if service.is_ready():
                    waiting.remove(service)
                    self.say(f"{service.spec.label} {service.spec.name} 已就绪 / ready")
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.spec.name for s in waiting)
                raise LaunchError(
                    f"{self.ready_timeout:.0f} 秒内未就绪 / not ready within "
                    f"{self.ready_timeout:.0f}s: {names}; 日志 / logs: {self.data_dir / 'logs'}"
                )
            if waiting:
                self.stopping.wait(0.1)

    def _check_interrupted(self) -> None:
        if self.stopping.is_set():
            raise Interrupted

    def _raise_if_dead(self, service: ServiceProcess) -> None:
        code = service.returncode
        if code is not None:
            raise LaunchError(
                f"{service.spec.name} 意外退出 / exited unexpectedly (code {code}); "
                f"日志 / log {service.log_path}:\n{service.tail()}"
            )

    def watch(self) -> None:
        """Return when a stop is asked for; raise if a part of the stack dies on its own."""
        while not self.stopping.wait(0.5):
            nats = self.nats.process
            nats_code = None if nats is None else nats.poll()
            dead = [s for s in self.services if not s.running]
            if nats_code is None and not dead:
                continue
            for service in dead:
                self._raise_if_dead(service)
            raise LaunchError(
                f"nats-server 意外退出 / exited unexpectedly (code {nats_code}); "
                f"日志 / log {self.nats.data_dir / 'nats-server.log'}"
            )

    def stop(self) -> None:
        """Services first (each gets SIGTERM, then SIGKILL after the timeout), NATS last."""
        running = [s for s in reversed(self.services) if s.running]
        for service in running:
            service.terminate()
        deadline = time.monotonic() + self.stop_timeout
        for service in running:
            service.wait_or_kill(deadline)
        with contextlib.suppress(OSError):
            self.nats.stop(self.stop_timeout)
