"""The processes under test: started fresh for each target, always stopped again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from shared.embedded import EmbeddedNats, die_with_parent, free_port
from shared.settings import Settings
from tests.support.stores import Store

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


@contextlib.contextmanager
def event_store(kind: str, workdir: Path, postgres_dbname: str) -> Iterator[Store]:
    """SQLite files in `workdir`, or a PostgreSQL schema of this run's own, dropped after."""
    if kind == "sqlite":
        yield Store(Settings(data_dir=workdir))
        return
    settings = Settings(
        data_dir=workdir,
        event_store="postgres",
        postgres_dbname=postgres_dbname,
        postgres_schema=f"bench_{os.getpid()}_{int(time.time())}",
    )
    with psycopg.connect(
        host=settings.postgres_host, port=settings.postgres_port, user=settings.postgres_user,
        password=settings.postgres_password or None, dbname=postgres_dbname, autocommit=True,
    ) as admin:  # fmt: skip
        admin.execute(f"CREATE SCHEMA {settings.postgres_schema}")
        try:
            yield Store(settings)
        finally:
            admin.execute(f"DROP SCHEMA {settings.postgres_schema} CASCADE")


@dataclass(frozen=True)
class Target:
    """One system under load: where to POST issues, and the processes that serve them."""

    name: str
    base_url: str
    pids: dict[str, int]
    store: Store
    application: str
    projections_url: str | None = None
    logs: list[Path] = field(default_factory=list)
    replica_urls: tuple[str, ...] = ()
    """Every replica's base URL when there are several, each to be loaded on its own."""
    nats_url: str | None = None

    @property
    def load_urls(self) -> tuple[str, ...]:
        return self.replica_urls or (self.base_url,)

    def stored_events(self) -> int:
        return self.store.count_events(self.application)

    def projected_issues(self) -> int:
        assert self.projections_url is not None, "this target has no projection"
        return self.store.count_projected_issues()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The most resident memory a running process has held since it started (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise ValueError(f"no VmHWM for process {pid}")


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idling, since boot."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle, iowait = ticks[3], ticks[4]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def _log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def _process(
    name: str, argv: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own session (Ctrl-C reaches only us, we stop it in order); the kernel
    still ends it if this process dies without cleaning up."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down gracefully), SIGKILL if it takes too long."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(name: str, url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{_log_tail(log_path)}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{url}/readyz", timeout=1) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{name} not ready after {READY_TIMEOUT_SECONDS}s:\n{_log_tail(log_path)}")


@contextlib.contextmanager
def baseline(workdir: Path, store: Store) -> Iterator[Target]:
    """The naive baseline app alone."""
    port = free_port()
    log = workdir / "baseline.log"
    env = json.dumps(store.env("baseline"))
    argv = [sys.executable, "-m", "bench.baseline_app", "--port", str(port), "--store-env", env]
    with _process("baseline", argv, dict(os.environ), log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_ready("baseline", url, process, log)
        yield Target("baseline", url, {"baseline": process.pid}, store, "baseline", logs=[log])


@contextlib.contextmanager
def bare(workdir: Path, store: Store, answer: bytes) -> Iterator[Target]:
    """The bare `async def` endpoint (bench/statistics_bare.py): what FastAPI alone serves."""
    port = free_port()
    log = workdir / "bare.log"
    body = workdir / "bare-answer.json"
    body.write_bytes(answer)
    argv = [sys.executable, "-m", "bench.statistics_bare", "--port", str(port), "--body", str(body)]
    with _process("bare", argv, dict(os.environ), log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_ready("bare", url, process, log)
        yield Target("bare", url, {"bare": process.pid}, store, "bare", logs=[log])


@contextlib.contextmanager
def pipeline(workdir: Path, store: Store, intake_replicas: int = 1) -> Iterator[Target]:
    """The full pipeline: nats-server, intake (with its relay) and projections. With several
    intake replicas, each is a process on a port of its own, all on one event store; the
    relay's lease lets one of them publish."""
    intake_ports = [free_port() for _ in range(intake_replicas)]
    projections_port = free_port()
    with contextlib.ExitStack() as stack:
        nats = stack.enter_context(EmbeddedNats(workdir / "nats"))
        assert nats.process is not None
        nats.set_up_blocking(Settings())  # the streams, as `shangliang up` creates them
        env = {
            **os.environ,
            "SHANGLIANG_DATA_DIR": str(workdir),
            "SHANGLIANG_NATS_URL": nats.url,
            **store.service_env(),
        }
        pids = {"nats-server": nats.process.pid}
        logs = [workdir / "nats" / "nats-server.log"]
        intakes = [
            (f"intake-{n + 1}" if intake_replicas > 1 else "intake", "intake", port)
            for n, port in enumerate(intake_ports)
        ]
        urls = {}
        for name, service, port in [*intakes, ("projections", "projections", projections_port)]:
            log = workdir / f"{name}.log"
            argv = [sys.executable, "-m", f"services.{service}.main"]
            service_env = {**env, f"SHANGLIANG_{service.upper()}_PORT": str(port)}
            process = stack.enter_context(_process(name, argv, service_env, log))
            urls[name] = f"http://127.0.0.1:{port}"
            wait_ready(name, urls[name], process, log)
            pids[name] = process.pid
            logs.append(log)
        yield Target(
            "pipeline" if intake_replicas == 1 else f"pipeline x{intake_replicas}",
            urls[intakes[0][0]],
            pids,
            store,
            "intake",
            projections_url=urls["projections"],
            logs=logs,
            replica_urls=tuple(urls[name] for name, _, _ in intakes) if intake_replicas > 1 else (),
            nats_url=nats.url,
        )
