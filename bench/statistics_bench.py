"""GET /statistics/{year} under load (统计接口压测), beside a bare FastAPI endpoint.

1. A projection view is loaded directly through `apply()` with generated messages: N issues
   of 2020 across the offices, half screened (some as reports), 40 % resolved, a key
   problem in seven; outreach activities, meetings and cases from the richer generated
   history on top.
2. The projections service (`python -m services.projections.main`, with a nats-server of its
   own) serves that file; `bench/statistics_bare.py` serves the same answer's bytes from
   an `async def` route with nothing behind it.
3. wrk (`-c64`, GET with a prefecture viewer token) loads each in turn, in the same run.

    python -m bench.statistics_bench --issues 1000000 --duration 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Tracking

from bench.processes import peak_rss_mb, stop, wait_ready
from bench.wrk import _SCRIPT, RESULT_MARKER, lua_string, run_wrk
from services.projections.views import ProjectionView, open_projection_view
from shared.auth import Authenticator
from shared.consumer import Delivered
from shared.contracts import Envelope, IssueResolvedV1, IssueScreenedV1, IssueSubmittedV1
from shared.embedded import EmbeddedNats, die_with_parent, free_port
from shared.settings import Settings
from tests.support.history import OFFICES, batches, history, uid

YEAR_START = datetime(2020, 1, 1, tzinfo=UTC)


def lean_issues(count: int) -> Iterator[Delivered]:
    """The INTAKE stream of `count` issues: submitted, often screened, often resolved."""
    sequence = 0

    def message(contract: Any) -> Delivered:
        nonlocal sequence
        sequence += 1
        envelope = Envelope.wrap(
            str(uid("lean", sequence)), contract.occurred_at, "intake.x", contract
        )
        return Delivered(sequence, envelope, contract)

    for n in range(count):
        office = OFFICES[n % len(OFFICES)]
        issue_id = uid("lean-issue", n)
        at = YEAR_START + timedelta(seconds=(n * 7919) % (360 * 86400))
        yield message(
            IssueSubmittedV1(
                issue_id=issue_id,
                office=office,
                title=f"问题 {n}",
                description="描述",
                category="城市管理",
                submitted_at=at,
                key_problem=n % 7 == 0,
            )
        )
        if n % 2 == 0:
            yield message(
                IssueScreenedV1(
                    issue_id=issue_id,
                    office=office,
                    decision="report" if n % 4 == 0 else "answered",
                    screened_at=at + timedelta(hours=5),
                    screened_by="leader",
                    title=f"问题 {n}",
                    category="城市管理",
                )
            )
        if n % 5 < 2:
            yield message(
                IssueResolvedV1(
                    issue_id=issue_id,
                    office=office,
                    resolved_at=at + timedelta(days=n % 40),
                    via="answered",
                )
            )


def load(view: ProjectionView, issues: int, batch: int = 5000) -> int:
    applied = 0
    pending: list[Delivered] = []
    for message in lean_issues(issues):
        pending.append(message)
        if len(pending) == batch:
            view.apply(pending, Tracking("BENCH_LEAN", pending[-1].position))
            applied += len(pending)
            pending = []
            if applied % 200_000 < batch:
                print(f"  loaded {applied:,} messages", flush=True)
    if pending:
        view.apply(pending, Tracking("BENCH_LEAN", pending[-1].position))
        applied += len(pending)
    for stream, messages in history(4000, seed=2, days=300).items():
        for part in batches(messages, batch):
            view.apply(part, Tracking(f"BENCH_{stream}", part[-1].position))
            applied += len(part)
    return applied


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        child = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    try:
        yield child
    finally:
        stop(child)


def get_script(path: Path, token: str) -> Path:
    script = _SCRIPT.replace('wrk.method = "POST"', 'wrk.method = "GET"').format(
        body='""', authorization=lua_string(f"Bearer {token}".encode()), marker=RESULT_MARKER
    )
    path.write_text(script)
    return path


HEAVY_READS = (
    "/statistics/2020?as_of=2020-12-31",
    "/statistics/2020/breakdown",
    "/statistics/2020/issues_resolved?page=100&page_size=200",
    "/statistics/2020/issues_collected?fmt=csv",
    "/issues?year=2020&page=1000&page_size=200",
)
"""Reads whose work grows with the view (a recount, the buckets, a drill-down page, an
export of up to 100,000 rows, a deep list page): what could make the process grow."""


def heavy_reads(url: str, token: str, pid: int) -> dict[str, dict[str, float]]:
    """Each of HEAVY_READS once: its seconds and the process's peak RSS after it; a failed
    one fails the bench."""
    measured = {}
    for path in HEAVY_READS:
        request = urllib.request.Request(
            f"{url}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as answer:
            answer.read()
        seconds = round(time.perf_counter() - started, 2)
        measured[path] = {"seconds": seconds, "peak_rss_mb_after": peak_rss_mb(pid)}
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=200_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    token = Authenticator(Settings()).mint("yanbian", ["viewer"], subject="bench")
    results: dict[str, Any] = {"issues": args.issues}
    with tempfile.TemporaryDirectory(prefix="shangliang-statistics-bench-") as folder:
        tmp = Path(folder)
        data = tmp / "data"
        data.mkdir()
        view = open_projection_view(str(data / "projections.sqlite"))
        started = time.perf_counter()
        results["messages"] = load(view, args.issues)
        results["load_s"] = round(time.perf_counter() - started, 1)
        view.datastore.close()
        print(f"loaded {results['messages']:,} messages in {results['load_s']} s", flush=True)
        script = get_script(tmp / "get.lua", token)
        with EmbeddedNats(tmp / "nats") as nats:
            nats.set_up_blocking(Settings())  # the streams, as `shangliang up` creates them
            port = free_port()
            env = {
                **os.environ,
                "SHANGLIANG_DATA_DIR": str(data),
                "SHANGLIANG_NATS_URL": nats.url,
                "SHANGLIANG_PROJECTIONS_PORT": str(port),
            }
            url = f"http://127.0.0.1:{port}"
            log = tmp / "projections.log"
            argv = [sys.executable, "-m", "services.projections.main"]
            with process(argv, env, log) as served:
                wait_ready("projections", url, served, log)
                request = urllib.request.Request(
                    f"{url}/statistics/2020", headers={"Authorization": f"Bearer {token}"}
                )
                with urllib.request.urlopen(request) as answer:
                    body = answer.read()
                total = json.loads(body)["total"]
                results["total_2020"] = total
                wrk = run_wrk(
                    f"{url}/statistics/2020",
                    script,
                    connections=args.connections,
                    threads=1,
                    duration_s=args.duration,
                )
                results["projections"] = wrk.as_dict()
                results["projections_peak_rss_mb"] = {"after_load": peak_rss_mb(served.pid)}
                results["heavy_reads"] = heavy_reads(url, token, served.pid)
                results["projections_peak_rss_mb"]["after_heavy_reads"] = peak_rss_mb(served.pid)
        (tmp / "body.json").write_bytes(body)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable,
            "-m",
            "bench.statistics_bare",
            "--port",
            str(port),
            "--body",
            str(tmp / "body.json"),
        ]
        log = tmp / "bare.log"
        with process(argv, dict(os.environ), log) as bare:
            wait_ready("bare", url, bare, log)
            wrk = run_wrk(
                f"{url}/statistics/2020",
                script,
                connections=args.connections,
                threads=1,
                duration_s=args.duration,
            )
            results["bare"] = wrk.as_dict()
    ratio = results["projections"]["requests_per_second"] / results["bare"]["requests_per_second"]
    results["ratio"] = round(ratio, 3)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    p99 = results["projections"]["latency_ms"]["p99"]
    print(
        f"projections {results['projections']['requests_per_second']:,.0f} req/s p99 {p99} ms · "
        f"bare {results['bare']['requests_per_second']:,.0f} req/s · ratio {ratio:.0%} "
        "(targets: p99 < 10 ms, ratio >= 50%)"
    )
    rss = results["projections_peak_rss_mb"]
    print(
        f"projections peak RSS: {rss['after_load']} MiB after the load, "
        f"{rss['after_heavy_reads']} MiB after the heavy reads (target < 200 MiB)"
    )


if __name__ == "__main__":
    main()
