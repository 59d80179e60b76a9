"""The one-machine launcher (一键启动): embedded nats-server, each service in its own process."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Protocol

import httpx
import nats.errors

from services.console.settings import ConsoleSettings
from services.intake.settings import IntakeSettings
from services.meetings.settings import MeetingsSettings
from services.notifications.settings import NotificationsSettings
from services.notifications.sink import MailSink
from services.projections.settings import ProjectionsSettings
from services.supervision.settings import SupervisionSettings
from shared.embedded import EmbeddedNats, die_with_parent, free_port, passwords_from_file
from shared.files import open_private_log, private_dir
from shared.settings import ServiceSettings, Settings


@dataclass(frozen=True)
class ServiceSpec:
    """A service the launcher runs: the module to execute, the settings saying where it listens."""

    name: str
    label: str
    module: str
    settings: type[ServiceSettings]
    upstreams: tuple[str, ...] = ()
    """Services it calls over HTTP: their URLs reach it as `<prefix><NAME>_URL`."""


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("intake", "问题收集", "services.intake.main", IntakeSettings),
    ServiceSpec("meetings", "协商会议", "services.meetings.main", MeetingsSettings),
    ServiceSpec("supervision", "督办", "services.supervision.main", SupervisionSettings),
    ServiceSpec("projections", "查询统计", "services.projections.main", ProjectionsSettings),
    ServiceSpec("notifications", "通知", "services.notifications.main", NotificationsSettings),
    ServiceSpec(
        "console",
        "工作台",
        "services.console.main",
        ConsoleSettings,
        upstreams=("intake", "meetings", "supervision", "projections"),
    ),
)
"""Started in this order, stopped in the reverse order."""


PASSWORDS_FILE = "nats-passwords.json"
"""In the data folder: every NATS user's password, generated on the first start."""

STATE_FILE = "launcher-state.json"
"""In the data folder: what the running launcher supervises, for `shangliang status` and for
the commands that must find its nats-server; rewritten whole (atomically) on every change."""

HEARTBEAT_SECONDS = 2.0
"""How often the launcher rewrites its state file even when nothing changed."""


@dataclass(frozen=True)
class RestartPolicy:
    """When a child that died is started again (重启策略): after 1 s, doubling up to 30 s, back
    to 1 s once a run stayed up a minute; the stack gives up when a child fails its start
    (exits before it is ready) `give_up_after` times in a row."""

    first_delay: float = 1.0
    longest_delay: float = 30.0
    reset_after: float = 60.0
    give_up_after: int = 5

    def delay(self, step: int) -> float:
        return min(self.longest_delay, self.first_delay * 2.0**step)


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
        with open_private_log(self.log_path) as log:
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
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def is_ready(self) -> bool:
        try:
            answer = httpx.get(f"{self.url}/readyz", timeout=1.0)
            # Another service answering on this port is not this one being ready.
            return answer.status_code == 200 and answer.json().get("service") == self.spec.name
        except (httpx.HTTPError, ValueError):
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


class Child(Protocol):
    """What the launcher supervises: nats-server or a service."""

    @property
    def name(self) -> str: ...

    @property
    def log_path(self) -> Path: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def returncode(self) -> int | None: ...

    def start(self, env: dict[str, str]) -> None: ...

    def is_ready(self) -> bool: ...


class NatsChild:
    """The embedded nats-server as a supervised child; its start returns once it is healthy."""

    name = "nats-server"

    def __init__(self, nats: EmbeddedNats) -> None:
        self.nats = nats

    @property
    def log_path(self) -> Path:
        return self.nats.data_dir / "nats-server.log"

    @property
    def pid(self) -> int | None:
        return None if self.nats.process is None else self.nats.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.nats.process is None else self.nats.process.poll()

    def start(self, env: dict[str, str]) -> None:
        # A start that fails leaves the process ended: the next look counts a failed start.
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.nats.start()

    def is_ready(self) -> bool:
        return self.returncode is None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Supervised:
    """One child and what supervision knows of it (`shangliang status` shows it)."""

    child: Child
    label: str
    url: str
    state: str = "starting"
    """starting (not yet ready), running, waiting (to be restarted), stopped."""
    restarts: int = 0
    last_exit: int | None = None
    last_exit_at: str | None = None
    failed_starts: int = 0
    """Runs in a row that ended before they were ready."""
    backoff_step: int = 0
    up_since: float = 0.0
    restart_at: float = 0.0
    environment: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.child.name,
            "label": self.label,
            "url": self.url,
            "state": self.state,
            "pid": self.child.pid if self.state in ("starting", "running") else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_exit_at": self.last_exit_at,
            "log": str(self.child.log_path),
        }


def write_atomically(path: Path, text: str) -> None:
    """A reader sees the old file or the new one, never half of one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(partial, path)


def read_state(data_dir: Path) -> dict[str, object] | None:
    """The state file of the launcher that runs (or ran) on `data_dir`; None without one, or
    when the launcher that wrote it is gone (killed before it could say so)."""
    try:
        state = dict(json.loads((data_dir / STATE_FILE).read_text()))
    except (OSError, ValueError):
        return None
    pid = state.get("launcher_pid")
    if not isinstance(pid, int) or not _alive(pid):
        state["state"] = "stopped"
    return state


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Stack:
    """The embedded nats-server and the services: started together, supervised (each restarted
    when it dies, by `RestartPolicy`), stopped together."""

    def __init__(
        self,
        settings: Settings,
        services: Sequence[ServiceSpec] = SERVICES,
        ready_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        say: Callable[[str], None] = print_flushed,
        mail_sink: bool = False,
        policy: RestartPolicy = RestartPolicy(),
    ) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.say = say
        self.policy = policy
        self.stopping = threading.Event()
        self.nats = EmbeddedNats(self.data_dir / "nats", port=settings.embedded_nats_port)
        self.mail_sink = MailSink(self.data_dir / "mail", say=say) if mail_sink else None
        """`--mail-sink`: a local SMTP server the notifications go to (data/mail/*.eml)."""
        self.services = [
            self._process_for(spec, spec.settings(), self.data_dir / "logs") for spec in services
        ]
        self.supervised = [Supervised(NatsChild(self.nats), "消息服务器", self.nats.url)] + [
            Supervised(s, s.spec.label, s.url) for s in self.services
        ]
        self.phase = "starting"
        self._published = 0.0

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
        """Start everything and wait until each service is ready; raise if anything fails.

        A first start that fails is not retried: nothing was up to heal, and the cause is
        nearly always the configuration, which the user should read at once."""
        self._refuse_busy_ports()
        private_dir(self.data_dir)
        # Each service connects as its own user (shared/nats_access.py), never anonymously.
        self.nats.passwords = passwords_from_file(self.data_dir / PASSWORDS_FILE)
        self.publish()
        try:
            self.nats.start()
            self.nats.set_up_blocking(self.settings)
        except (OSError, RuntimeError, TimeoutError, nats.errors.Error) as error:
            raise LaunchError(
                f"nats-server 启动失败 / nats-server did not start: {error}"
            ) from error
        self._mark_ready(self.supervised[0], time.monotonic())
        self.say(f"nats-server 已启动 / started: {self.nats.url}")
        self._check_interrupted()
        if self.mail_sink is not None:
            self.mail_sink.start()
            self.say(f"邮件收件箱 / mail sink: smtp://127.0.0.1:{self.mail_sink.port}")
        for entry in self.supervised[1:]:
            entry.environment = self._environment(self.service(entry.child.name))
            entry.child.start(entry.environment)
        self.publish()
        self._wait_ready()
        self.phase = "running"
        self.publish()

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
        # A service that talks to NATS has a user of its own name (shared/nats_access.py).
        password = self.nats.passwords.get(service.spec.name)
        user = {} if password is None else {
            "SHANGLIANG_NATS_USER": service.spec.name,
            "SHANGLIANG_NATS_PASSWORD": password,
        }  # fmt: skip
        # The child needs the whole environment (PATH, locale, SHANGLIANG_* keys), not only ours.
        upstreams = {
            f"{prefix}{name.upper()}_URL": self.service(name).url for name in service.spec.upstreams
        }
        return {
            **os.environ,
            "SHANGLIANG_NATS_URL": self.nats.url,
            **user,
            **upstreams,
            "SHANGLIANG_DATA_DIR": str(self.data_dir),
            f"{prefix}HOST": service.host,
            f"{prefix}PORT": str(service.port),
            "PYTHONUNBUFFERED": "1",
            **(self.mail_sink.environment() if self.mail_sink is not None else {}),
        }

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        waiting = list(self.supervised[1:])
        while waiting:
            self._check_interrupted()
            for entry in list(waiting):
                self._raise_if_dead(entry)
                if entry.child.is_ready():
                    waiting.remove(entry)
                    self._mark_ready(entry, time.monotonic())
                    self.say(f"{entry.label} {entry.child.name} 已就绪 / ready")
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.child.name for s in waiting)
                raise LaunchError(
                    f"{self.ready_timeout:.0f} 秒内未就绪 / not ready within "
                    f"{self.ready_timeout:.0f}s: {names}; 日志 / logs: {self.data_dir / 'logs'}"
                )
            if waiting:
                self.stopping.wait(0.1)

    def _check_interrupted(self) -> None:
        if self.stopping.is_set():
            raise Interrupted

    def _raise_if_dead(self, entry: Supervised) -> None:
        code = entry.child.returncode
        if code is not None:
            tail = entry.child.tail() if isinstance(entry.child, ServiceProcess) else ""
            raise LaunchError(
                f"{entry.child.name} 意外退出 / exited unexpectedly (code {code}); "
                f"日志 / log {entry.child.log_path}:\n{tail}"
            )

    def _mark_ready(self, entry: Supervised, now: float) -> None:
        entry.state = "running"
        entry.up_since = now
        entry.failed_starts = 0

    def watch(self) -> None:
        """Supervise until a stop is asked for: restart each child that dies, by the policy;
        raise when one fails its start `give_up_after` times in a row."""
        while not self.stopping.wait(0.2):
            now = time.monotonic()
            changed = False
            for entry in self.supervised:
                changed |= self._supervise(entry, now)
            if changed or now - self._published >= HEARTBEAT_SECONDS:
                self.publish()

    def _supervise(self, entry: Supervised, now: float) -> bool:
        """One look at one child; whether its state changed."""
        name = entry.child.name
        if entry.state in ("starting", "running"):
            code = entry.child.returncode
            if code is None:
                if entry.state == "starting" and entry.child.is_ready():
                    self._mark_ready(entry, now)
                    self.say(f"{entry.label} {name} 已恢复 / back up (restart {entry.restarts})")
                    return True
                return False
            self._exited(entry, code, now)
            return True
        if entry.state == "waiting" and now >= entry.restart_at:
            entry.restarts += 1
            entry.state = "starting"
            self.say(f"{entry.label} {name} 正在重启 / restarting (restart {entry.restarts})")
            entry.child.start(entry.environment)
            return True
        return False

    def _exited(self, entry: Supervised, code: int, now: float) -> None:
        name = entry.child.name
        entry.last_exit, entry.last_exit_at = code, _now()
        if entry.state == "starting":
            entry.failed_starts += 1
        elif now - entry.up_since >= self.policy.reset_after:
            entry.backoff_step = 0
        if entry.failed_starts >= self.policy.give_up_after:
            entry.state = "stopped"
            self.publish()
            raise LaunchError(
                f"{name} 连续 {entry.failed_starts} 次启动失败，整个系统停止 / failed its start "
                f"{entry.failed_starts} times in a row (last exit code {code}), stopping the "
                f"stack; 日志 / log {entry.child.log_path}"
            )
        delay = self.policy.delay(entry.backoff_step)
        entry.backoff_step += 1
        entry.state = "waiting"
        entry.restart_at = now + delay
        self.say(
            f"{entry.label} {name} 意外退出（代码 {code}），{delay:g} 秒后重启 / exited "
            f"unexpectedly (code {code}), restarting in {delay:g}s; 日志 / log "
            f"{entry.child.log_path}"
        )

    def publish(self) -> None:
        """Write the state file that `shangliang status` and the NATS commands read."""
        self._published = time.monotonic()
        state = {
            "launcher_pid": os.getpid(),
            "state": self.phase,
            "updated_at": _now(),
            "data_dir": str(self.data_dir),
            "nats_url": self.nats.url,
            "children": [entry.as_json() for entry in self.supervised],
        }
        with contextlib.suppress(OSError):
            write_atomically(
                self.data_dir / STATE_FILE, json.dumps(state, ensure_ascii=False, indent=1)
            )

    def stop(self) -> None:
        """Services first (each gets SIGTERM, then SIGKILL after the timeout), NATS last."""
        self.phase = "stopping"
        self.publish()
        running = [s for s in reversed(self.services) if s.running]
        for service in running:
            service.terminate()
        deadline = time.monotonic() + self.stop_timeout
        for service in running:
            service.wait_or_kill(deadline)
        with contextlib.suppress(OSError):
            self.nats.stop(self.stop_timeout)
        if self.mail_sink is not None:
            self.mail_sink.stop()
        self.phase = "stopped"
        for entry in self.supervised:
            entry.state = "stopped"
        self.publish()
