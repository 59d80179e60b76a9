"""The processes under test: started fresh for each target, always stopped again."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shared.embedded import EmbeddedNats, die_with_parent, free_port

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Target:
    """One system under load: where to POST issues, and the processes that serve them."""

    name: str
    base_url: str
    pids: dict[str, int]
    event_store: Path
    projections_url: str | None = None
    projections_db: Path | None = None
    logs: list[Path] = field(default_factory=list)

    def stored_events(self) -> int:
        return count_rows(self.event_store, "stored_events")

    def projected_issues(self) -> int:
        assert self.projections_db is not None, "this target has no projection"
        return count_rows(self.projections_db, "issue_status")


def count_rows(db: Path, table: str) -> int:
    """Read a service's SQLite file from outside (WAL mode allows a concurrent reader)."""
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as c:
        try:
            return int(c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # the table is not created yet


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


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
def baseline(workdir: Path) -> Iterator[Target]:
    """The naive baseline app alone."""
    port = free_port()
    db = workdir / "baseline.sqlite"
    log = workdir / "baseline.log"
    argv = [sys.executable, "-m", "bench.baseline_app", "--port", str(port), "--db", str(db)]
    with _process("baseline", argv, dict(os.environ), log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_ready("baseline", url, process, log)
        yield Target("baseline", url, {"baseline": process.pid}, db, logs=[log])


@contextlib.contextmanager
def pipeline(workdir: Path) -> Iterator[Target]:
    """The full pipeline: nats-server, intake (with its relay) and projections."""
    intake_port, projections_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        nats = stack.enter_context(EmbeddedNats(workdir / "nats"))
        assert nats.process is not None
        env = {
            **os.environ,
            "SHANGLIANG_DATA_DIR": str(workdir),
            "SHANGLIANG_NATS_URL": nats.url,
            "SHANGLIANG_INTAKE_PORT": str(intake_port),
            "SHANGLIANG_PROJECTIONS_PORT": str(projections_port),
        }
        pids = {"nats-server": nats.process.pid}
        logs = [workdir / "nats" / "nats-server.log"]
        urls = {}
        for name, port in (("intake", intake_port), ("projections", projections_port)):
            log = workdir / f"{name}.log"
            argv = [sys.executable, "-m", f"services.{name}.main"]
            process = stack.enter_context(_process(name, argv, env, log))
            urls[name] = f"http://127.0.0.1:{port}"
            wait_ready(name, urls[name], process, log)
            pids[name] = process.pid
            logs.append(log)
        yield Target(
            "pipeline",
            urls["intake"],
            pids,
            workdir / "intake.sqlite",
            projections_url=urls["projections"],
            projections_db=workdir / "projections.sqlite",
            logs=logs,
        )
