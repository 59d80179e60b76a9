"""The shared system on one machine, as deploy/compose.yaml runs it: a 3-node JetStream cluster
started from deploy/nats/cluster/node.conf, a PostgreSQL of its own on a free port, and every
service on them (`SHANGLIANG_EVENT_STORE=postgres`, R3 streams), each a child process.

`shangliang up` always starts an embedded nats-server, so the services are supervised here by
the launcher's own machinery (`tools.launcher.Stack`: the restart policy, the state file
`shangliang status` reads), with the three nodes and PostgreSQL as supervised children too —
what compose's `restart:` or Kubernetes does for them in production. It runs as a process of
its own (`python -m tests.support.cluster LAYOUT`), so that a test or bench may SIGKILL any
of its children and see it come back; `cluster_stack` starts it and addresses it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from shared.embedded import (
    EmbeddedNats,
    die_with_parent,
    free_port,
    nats_server_binary,
    passwords_from_file,
)
from shared.files import open_private_log, private_dir
from shared.nats_access import USERS, password_variable
from shared.settings import Settings
from tests.support.stack import ROOT, RunningStack, launch_stack, wait_ready
from tools.launcher import (
    PASSWORDS_FILE,
    SERVICES,
    Interrupted,
    LaunchError,
    ServiceSpec,
    Stack,
    Supervised,
)

NODE_CONFIG = ROOT / "deploy" / "nats" / "cluster" / "node.conf"
NODES = ("nats-1", "nats-2", "nats-3")
TEST_PASSWORDS = {user: f"{user}-test-password" for user in USERS}
"""Passwords for the users of deploy/nats/users.conf, for tests that start nodes by hand."""
READY_TIMEOUT = 120.0


# --- nats-server nodes from the deploy configs ---------------------------------------------------


class NatsNode:
    """A nats-server started from one of deploy/nats's config files, as deployed: what
    differs per server (name, ports, store, routes, passwords) is in its environment, which
    the files read as `$NATS_*` variables."""

    def __init__(
        self,
        name: str,
        config: Path,
        log_path: Path,
        variables: dict[str, str],
        client_port: int = 0,
        monitor_port: int = 0,
    ) -> None:
        self.name = name
        self.config = config
        self.log_path = log_path
        self.variables = variables
        self.client_port = client_port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def environment(self, passwords: dict[str, str]) -> dict[str, str]:
        """What the config reads: this server's settings and the users' passwords."""
        return {
            **os.environ,
            "NATS_SERVER_NAME": self.name,
            "NATS_CLIENT_PORT": str(self.client_port),
            "NATS_MONITOR_PORT": str(self.monitor_port),
            **self.variables,
            **{password_variable(user): p for user, p in passwords.items()},
        }

    def start(self, env: dict[str, str]) -> None:
        """Start it and return at once (`is_ready` says when it is healthy)."""
        with open_private_log(self.log_path) as log:
            self.process = subprocess.Popen(
                [nats_server_binary(), "-c", str(self.config)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
                process_group=0,
            )

    def is_ready(self) -> bool:
        """Healthy, with JetStream on (a cluster node: back in the cluster)."""
        health = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(health, timeout=1) as answer,
        ):
            return bool(answer.status == 200)
        return False

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.returncode is not None:
                raise RuntimeError(f"{self.name} exited with {self.returncode}: {self.log_path}")
            if self.is_ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not healthy in {timeout}s")

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def route_variables(cluster_ports: list[int]) -> dict[str, str]:
    """`NATS_ROUTE_1..n`: every node of a cluster routed to all of them."""
    return {
        f"NATS_ROUTE_{n + 1}": f"nats-route://127.0.0.1:{port}"
        for n, port in enumerate(cluster_ports)
    }


@dataclass(frozen=True)
class NodePorts:
    name: str
    client_port: int
    cluster_port: int
    monitor_port: int


def node_ports() -> list[NodePorts]:
    return [NodePorts(name, free_port(), free_port(), free_port()) for name in NODES]


def cluster_nodes(folder: Path, ports: list[NodePorts] | None = None) -> list[NatsNode]:
    """The three nodes of deploy/nats/cluster/node.conf (on free ports unless given), their
    stores and logs in `folder`."""
    ports = ports or node_ports()
    routes = route_variables([p.cluster_port for p in ports])
    return [
        NatsNode(
            p.name,
            NODE_CONFIG,
            folder / f"{p.name}.log",
            {
                "NATS_CLUSTER_PORT": str(p.cluster_port),
                "NATS_STORE_DIR": str(folder / p.name),
                **routes,
            },
            p.client_port,
            p.monitor_port,
        )
        for p in ports
    ]


class ClusterNats(EmbeddedNats):
    """The three nodes as the launcher's one nats-server: one URL naming them all (a client
    reconnects to another when one dies), the admin's set-up through any of them."""

    def __init__(self, nodes: list[NatsNode], data_dir: Path) -> None:
        super().__init__(data_dir, port=nodes[0].client_port)
        self.nodes = nodes

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 30.0) -> ClusterNats:
        assert self.passwords is not None, "the users' passwords come first"
        for node in self.nodes:
            node.start(node.environment(self.passwords))
        for node in self.nodes:
            node.wait_healthy(timeout)
        self.process = self.nodes[0].process
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for node in self.nodes:
            if node.process is not None and node.returncode is None:
                node.process.terminate()
        for node in self.nodes:
            node.stop(timeout)


# --- a PostgreSQL of its own ---------------------------------------------------------------------


def postgres_binary(name: str) -> str:
    """initdb or postgres: Debian keeps them out of PATH, under /usr/lib/postgresql/<v>/bin."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    if found:
        return str(found[0])
    on_path = shutil.which(name)
    if on_path is None:
        raise FileNotFoundError(f"{name} not found: install PostgreSQL's server binaries")
    return on_path


POSTGRES_ROLE = "shangliang"
POSTGRES_DBNAME = "shangliang"


class PrivatePostgres:
    """A PostgreSQL server on a free port and a data folder of its own, as a child process:
    SIGKILLed, it is started again on the same folder and recovers from its WAL (fsync on,
    as in production). PostgreSQL refuses to run as root; then it runs as the `postgres`
    user, which must own `folder` (see `postgres_folder`)."""

    name = "postgres"

    def __init__(self, folder: Path, port: int, log_path: Path) -> None:
        self.folder = folder
        self.port = port
        self.log_path = log_path
        """Kept outside `folder`, which goes when the run ends (opened by the supervisor, so
        it may be anywhere the supervisor can write)."""
        self.process: subprocess.Popen[bytes] | None = None
        self.os_user = "postgres" if os.geteuid() == 0 else None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{POSTGRES_ROLE}@127.0.0.1:{self.port}/{POSTGRES_DBNAME}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def _as_owner(self) -> dict[str, str]:
        return {} if self.os_user is None else {"user": self.os_user, "group": self.os_user}

    def initialise(self) -> None:
        """initdb once: a superuser role of the services' name, trusted on the loopback."""
        if (self.data / "PG_VERSION").exists():
            return
        subprocess.run(
            [
                postgres_binary("initdb"),
                "-D", str(self.data),
                "-U", POSTGRES_ROLE,
                "--auth=trust",
                "-E", "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            capture_output=True,
            **self._as_owner(),  # type: ignore[arg-type]
        )  # fmt: skip

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start the server and return at once (`is_ready` says when it takes connections)."""
        with open_private_log(self.log_path) as log:
            self.process = subprocess.Popen(
                [
                    postgres_binary("postgres"),
                    "-D", str(self.data),
                    "-p", str(self.port),
                    "-k", str(self.folder),
                    "-c", "listen_addresses=127.0.0.1",
                    # Six services' pools and their overflow, the checks beside them.
                    "-c", "max_connections=300",
                    "-c", "fsync=on",
                    "-c", "synchronous_commit=on",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
                process_group=0,
                **self._as_owner(),  # type: ignore[arg-type]
            )  # fmt: skip

    def connect(self, dbname: str = POSTGRES_DBNAME) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=POSTGRES_ROLE,
            dbname=dbname,
            autocommit=True,
            connect_timeout=2,
        )

    def is_ready(self) -> bool:
        try:
            with self.connect("postgres") as connection:
                connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def create_database(self) -> None:
        with self.connect("postgres") as connection:
            found = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (POSTGRES_DBNAME,)
            ).fetchone()
            if found is None:
                connection.execute(f"CREATE DATABASE {POSTGRES_DBNAME}")

    def stop(self, timeout: float = 20.0) -> None:
        """A fast shutdown (SIGINT): sessions are ended, the data checkpointed."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def postgres_environment(port: int) -> dict[str, str]:
    """The settings that put every store of the services in that PostgreSQL."""
    return {
        "SHANGLIANG_EVENT_STORE": "postgres",
        "SHANGLIANG_POSTGRES_HOST": "127.0.0.1",
        "SHANGLIANG_POSTGRES_PORT": str(port),
        "SHANGLIANG_POSTGRES_USER": POSTGRES_ROLE,
        "SHANGLIANG_POSTGRES_DBNAME": POSTGRES_DBNAME,
    }


@contextlib.contextmanager
def postgres_folder() -> Iterator[Path]:
    """A temporary folder for a PostgreSQL's data, owned by the user it will run as (the
    data folder of a run started as root would be unreachable to `postgres`)."""
    folder = Path(tempfile.mkdtemp(prefix="shangliang-postgres-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the supervisor ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where everything of one cluster stack lives and listens, chosen by who starts it."""

    data_dir: str
    nodes: list[NodePorts]
    postgres_folder: str
    postgres_port: int

    @staticmethod
    def read(path: Path) -> Layout:
        raw = json.loads(path.read_text())
        return Layout(
            raw["data_dir"],
            [NodePorts(**n) for n in raw["nodes"]],
            raw["postgres_folder"],
            raw["postgres_port"],
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))


class ClusterStack(Stack):
    """The launcher's supervision with the cluster's three nodes and PostgreSQL in place of
    its embedded nats-server: each child that dies is restarted by the same policy."""

    def __init__(
        self, settings: Settings, layout: Layout, services: tuple[ServiceSpec, ...] = SERVICES
    ) -> None:
        super().__init__(settings, services, ready_timeout=READY_TIMEOUT, mail_sink=True)
        self.nodes = cluster_nodes(self.data_dir.parent / "nats", layout.nodes)
        self.nats = ClusterNats(self.nodes, self.data_dir / "nats")
        self.postgres = PrivatePostgres(
            Path(layout.postgres_folder),
            layout.postgres_port,
            self.data_dir / "logs" / "postgres.log",
        )
        service_entries = self.supervised[1:]
        self.supervised = [
            *(Supervised(node, "消息服务器节点", node.url) for node in self.nodes),
            Supervised(self.postgres, "数据库", self.postgres.url),
            *service_entries,
        ]

    @property
    def infrastructure(self) -> list[Supervised]:
        return self.supervised[: len(self.nodes) + 1]

    def start(self) -> None:
        private_dir(self.data_dir)
        self.nats.passwords = passwords_from_file(self.data_dir / PASSWORDS_FILE)
        self.publish()
        try:
            self.postgres.initialise()
        except subprocess.CalledProcessError as error:
            raise LaunchError(f"initdb failed: {error.stderr!r}") from error
        self.postgres.start()
        try:
            self.nats.start(self.ready_timeout)
        except (RuntimeError, TimeoutError) as error:
            raise LaunchError(f"NATS 集群未就绪 / the cluster did not start: {error}") from error
        for entry, node in zip(self.supervised, self.nodes, strict=False):
            # What the supervision starts it with again.
            entry.environment = node.environment(self.nats.passwords)
        deadline = time.monotonic() + self.ready_timeout
        while not self.postgres.is_ready():
            self._raise_if_dead(self.infrastructure[-1])
            self._check_interrupted()
            if time.monotonic() > deadline:
                raise LaunchError(f"PostgreSQL not ready: {self.postgres.log_path}")
            time.sleep(0.1)
        for entry in self.infrastructure:
            self._mark_ready(entry, time.monotonic())
        self.postgres.create_database()
        self.nats.set_up_blocking(self.settings, timeout=self.ready_timeout)
        self.say(f"NATS 集群 / cluster: {self.nats.url}; PostgreSQL: {self.postgres.url}")
        assert self.mail_sink is not None
        self.mail_sink.start()
        for entry in self.supervised[len(self.infrastructure) :]:
            entry.environment = self._environment(self.service(entry.child.name))
            entry.child.start(entry.environment)
        self.publish()
        self._wait_ready()
        self.phase = "running"
        self.publish()

    def stop(self) -> None:
        super().stop()
        self.postgres.stop()


def main(layout_path: str) -> int:
    layout = Layout.read(Path(layout_path))
    stack = ClusterStack(Settings(data_dir=Path(layout.data_dir)), layout)
    stack.stop_on_signals()
    try:
        stack.start()
        print("已启动 / started", flush=True)
        stack.watch()
        return 0
    except LaunchError as error:
        print(f"错误 / error: {error}", file=sys.stderr, flush=True)
        return 1
    except Interrupted:
        return 0
    finally:
        print("正在停止 / stopping ...", flush=True)
        stack.stop()
        print("已停止 / stopped", flush=True)


# --- started and addressed -----------------------------------------------------------------------


@contextlib.contextmanager
def cluster_stack(folder: Path, settings: dict[str, str]) -> Iterator[RunningStack]:
    """The cluster stack in `folder` (PostgreSQL's data in a temporary folder of its own),
    ready, with `settings` on top of the defaults; stopped (SIGTERM) at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    with postgres_folder() as pg:
        ports = node_ports()
        layout = Layout(str(folder / "data"), ports, str(pg), free_port())
        layout.write(folder / "cluster.json")
        environment = {
            **postgres_environment(layout.postgres_port),
            "SHANGLIANG_STREAM_REPLICAS": "3",
            **settings,
        }
        stack = launch_stack(
            folder,
            environment,
            command=[sys.executable, "-m", "tests.support.cluster", str(folder / "cluster.json")],
            nats_url=",".join(f"nats://127.0.0.1:{p.client_port}" for p in ports),
        )
        try:
            wait_ready(stack, timeout=READY_TIMEOUT + 60)
            yield stack
        finally:
            stack.process.send_signal(signal.SIGTERM)
            try:
                stack.process.wait(60)
            except subprocess.TimeoutExpired:
                stack.process.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
