"""The walking skeleton's benchmark: `python -m bench.run` (or `make bench`).

1. POST /issues throughput and latency under closed-loop load (wrk), the full pipeline
   (nats-server + intake + projections, consuming during the load) beside a naive baseline
   (bench/baseline_app.py: one SQLite transaction per request) and the bare async endpoint
   (bench/statistics_bare.py: FastAPI alone), in the same run; with `--intake-replicas 1 2`
   also the pipeline with two intake processes on one event store. Each process's peak
   memory is read after the load; a view that does not catch up fails the run.
2. Submission-to-projection latency at a steady open-loop rate.

Every process is started fresh in a temporary folder and stopped again, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import uuid4

import nats
import uvloop
from nats.js.api import ConsumerConfig, DeliverPolicy

from bench import latency, processes
from bench.processes import Target, cpu_seconds, machine_busy_seconds, peak_rss_mb
from bench.wrk import run_wrk_on_each, write_script, wrk_version
from services.intake.domain import Issue
from services.intake.schemas import IssueView
from shared.auth import Authenticator
from shared.settings import Settings
from tests.support.stores import Store

RESULTS_DIR = Path(__file__).resolve().parent / "results"
OFFICE = "yanji"
CATCH_UP_TIMEOUT_SECONDS = 120.0

ISSUE = {
    "office": OFFICE,
    "title": "小区路灯损坏",
    "description": (
        "进学街道某小区3号楼至7号楼之间的路灯已连续两周夜间不亮，居民晚归时行走不便，"
        "老人和孩子曾在台阶处摔倒。居民多次向物业反映未果，希望有关部门尽快维修，"
        "并建立定期巡检机制。"
    ),
    "category": "城市管理",
    "submitted_at": "2024-06-04T15:30:00+08:00",
}
"""The one body every request sends, to both targets (titles may repeat; no Idempotency-Key)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--part", choices=["all", "throughput", "latency"], default="all")
    parser.add_argument("--duration", type=int, default=15, help="measured seconds per target")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rate", type=float, default=200.0, help="latency part: requests/s")
    parser.add_argument("--latency-duration", type=float, default=20.0)
    parser.add_argument("--latency-warmup", type=float, default=2.0)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="before each target, wait up to this many seconds for the machine to be idle",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="event stores of both targets: SQLite files, or a fresh PostgreSQL schema",
    )
    parser.add_argument("--postgres-dbname", default="test", help="with --store postgres")
    parser.add_argument(
        "--intake-replicas",
        type=int,
        nargs="+",
        default=[1],
        help="one pipeline target per number of intake processes, e.g. `1 2`; with several, "
        "one wrk per replica shares out the connections",
    )
    return parser.parse_args(argv)


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", *args], cwd=processes.REPO, capture_output=True, text=True, check=False
        )
        return completed.stdout.strip()

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "work_tree_changed": bool(git("status", "--porcelain", "--", "shared", "services")),
    }


def cpu_window(pids: dict[str, int]) -> Callable[[], dict[str, float]]:
    """Start measuring CPU time; the returned function gives the seconds used since, per
    process and by the whole machine (`machine`: also the generator and anything else)."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    machine_before = machine_busy_seconds()

    def used() -> dict[str, float]:
        seconds = {name: round(cpu_seconds(pid) - before[name], 2) for name, pid in pids.items()}
        seconds["machine"] = round(machine_busy_seconds() - machine_before, 2)
        return seconds

    return used


def wait_for_quiet(max_wait_s: float, threshold_cores: float = 0.2) -> dict[str, float]:
    """The cores are shared with whatever else runs here: wait (a while) until it is idle."""
    started = time.monotonic()
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = machine_busy_seconds() - before
        waited = time.monotonic() - started
        if busy <= threshold_cores or waited >= max_wait_s:
            if busy > threshold_cores:
                print(f"warning: {busy:.2f} cores busy with other work; measuring anyway")
            load = [round(v, 2) for v in os.getloadavg()]
            return {"busy_cores": round(busy, 2), "waited_s": round(waited, 1), "load_1_5_15": load}
        print(f"{busy:.2f} cores busy with other work; waiting for the machine to be idle …")


def throughput(args: argparse.Namespace, body: bytes, token: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    answer = bare_answer()
    targets: list[tuple[str, Callable[[Path, Store], Any]]] = [
        ("baseline", processes.baseline),
        ("bare", lambda workdir, store: processes.bare(workdir, store, answer)),
    ]
    for replicas in args.intake_replicas:
        targets.append(
            (
                "pipeline" if replicas == 1 else f"pipeline x{replicas}",
                lambda workdir, store, n=replicas: processes.pipeline(workdir, store, n),
            )
        )
    for name, start in targets:
        quiet = wait_for_quiet(args.quiet_wait)
        with tempfile.TemporaryDirectory(prefix="shangliang-bench-") as tmp:
            workdir = Path(tmp)
            script = write_script(workdir / "post_issue.lua", body, token)
            with (
                processes.event_store(args.store, workdir, args.postgres_dbname) as store,
                start(workdir, store) as target,
            ):
                urls = tuple(f"{url}/issues" for url in target.load_urls)
                if args.warmup > 0:
                    print(f"{name}: warm-up {args.warmup} s …", flush=True)
                    run_wrk_on_each(
                        urls,
                        script,
                        connections=args.connections,
                        threads=args.threads,
                        duration_s=args.warmup,
                    )
                print(f"{name}: measuring {args.duration} s …", flush=True)
                used = cpu_window(target.pids)
                result, parts = run_wrk_on_each(
                    urls,
                    script,
                    connections=args.connections,
                    threads=args.threads,
                    duration_s=args.duration,
                )
                cpu = used()
                machine_cpu = cpu.pop("machine")
                entry = result.as_dict()
                entry["idle_check_before_start"] = quiet
                entry["server_cpu_s"] = cpu
                entry["other_cpu_s"] = round(
                    machine_cpu - sum(cpu.values()) - result.generator_cpu_s, 2
                )
                if len(parts) > 1:
                    # Without each wrk's CPU: measured per process, it also counts the other.
                    entry["per_replica"] = [
                        {k: v for k, v in p.as_dict().items() if k != "generator_cpu_s"}
                        for p in parts
                    ]
                if target.projections_url is not None:
                    stored = target.stored_events()
                    entry["projection"] = {
                        "stored_events": stored,
                        "backlog_at_end_of_load": stored - target.projected_issues(),
                        **_catch_up(target),
                    }
                    entry["stream"] = _stream_check(target)
                else:
                    entry["stored_events"] = target.stored_events()
                # After the load and the catch-up: the high-water mark covers both.
                entry["peak_rss_mb"] = {n: peak_rss_mb(pid) for n, pid in target.pids.items()}
                results[name] = entry
    baseline_rps = results["baseline"]["requests_per_second"]
    bare_rps = results["bare"]["requests_per_second"]
    results["ratios"] = {
        name: round(results[name]["requests_per_second"] / baseline_rps, 2)
        for name, _ in targets[2:]
    }
    results["of_bare"] = {
        name: round(results[name]["requests_per_second"] / bare_rps, 3) for name, _ in targets[2:]
    }
    return results


def bare_answer() -> bytes:
    """What intake answers to ISSUE: the bare endpoint sends these bytes."""
    issue = Issue.submit(
        uuid4(),
        OFFICE,
        ISSUE["title"],
        ISSUE["description"],
        ISSUE["category"],
        datetime.fromisoformat(ISSUE["submitted_at"]),
        now=datetime.now(UTC),
    )
    return IssueView.of(issue).model_dump_json().encode()


def _stream_check(target: Target) -> dict[str, Any]:
    """After the load: did every stored event reach the INTAKE stream once, and which
    replica's relay published them (the lease lets one do it)?"""
    assert target.nats_url is not None

    async def check() -> dict[str, Any]:
        nc = await nats.connect(target.nats_url)
        try:
            js = nc.jetstream()
            started = time.monotonic()
            # Until the stream holds every stored event and nothing more is stored: requests
            # still in intake when wrk stops are stored after it (a count taken then, with
            # the stream read later, saw more distinct ids than it had counted messages).
            stored, previous = target.stored_events(), -1
            while stored != previous or (await js.stream_info("INTAKE")).state.messages < stored:
                if time.monotonic() - started > CATCH_UP_TIMEOUT_SECONDS:
                    break
                await asyncio.sleep(0.1)
                stored, previous = target.stored_events(), stored
            info = await js.stream_info("INTAKE")
            ids: set[str] = set()
            complete = asyncio.Event()
            if not info.state.messages:
                complete.set()

            async def collect(msg: Any) -> None:
                ids.add(msg.headers["Nats-Msg-Id"].split("~")[0])
                if msg.metadata.sequence.stream >= info.state.last_seq:
                    complete.set()

            subscription = await js.subscribe(
                "intake.>",
                stream="INTAKE",
                cb=collect,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
            async with asyncio.timeout(CATCH_UP_TIMEOUT_SECONDS):
                await complete.wait()
            await subscription.unsubscribe()
        finally:
            await nc.close()
        return {
            "stored_events": stored,
            "stream_messages": info.state.messages,
            "distinct_event_ids": len(ids),
            "each_once": stored == info.state.messages == len(ids),
            "relayed_by": {
                name: _events_relayed(url)
                for name, url in zip(
                    [n for n in target.pids if n.startswith("intake")],
                    target.load_urls,
                    strict=True,
                )
            },
        }

    return asyncio.run(check())


def _events_relayed(base_url: str) -> int:
    """The replica's own count of events its relay published (its Prometheus metrics)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith('shangliang_events_relayed_total{stream="INTAKE"}'):
                return int(float(line.split()[-1]))
    return 0


def _catch_up(target: Target) -> dict[str, Any]:
    """How long after the load the projection held every stored issue."""
    started = time.monotonic()
    while True:
        projected = target.projected_issues()
        if projected >= target.stored_events():
            return {
                "caught_up_after_s": round(time.monotonic() - started, 2),
                "projected": projected,
            }
        if time.monotonic() - started >= CATCH_UP_TIMEOUT_SECONDS:
            return {"caught_up_after_s": None, "projected": projected}
        time.sleep(0.05)


def projection_latency(args: argparse.Namespace, body: bytes, token: str) -> dict[str, Any]:
    quiet = wait_for_quiet(args.quiet_wait)
    with (
        tempfile.TemporaryDirectory(prefix="shangliang-bench-latency-") as tmp,
        processes.event_store(args.store, Path(tmp), args.postgres_dbname) as store,
        processes.pipeline(Path(tmp), store) as target,
    ):
        assert target.projections_url is not None
        print(
            f"latency: {args.rate:g} req/s, warm-up {args.latency_warmup:g} s, "
            f"measuring {args.latency_duration:g} s …",
            flush=True,
        )
        used = cpu_window({**target.pids, "generator": os.getpid()})
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(
                latency.measure(
                    target.base_url,
                    target.projections_url,
                    token,
                    body,
                    rate=args.rate,
                    duration_s=args.latency_duration,
                    warmup_s=args.latency_warmup,
                )
            )
        cpu = used()
        entry = result.as_dict()
        entry["idle_check_before_start"] = quiet
        entry["cpu_s_incl_warmup"] = cpu
        return entry


def report(results: dict[str, Any]) -> str:
    lines = [
        f"Shangliang bench · {results['date']} · {results['machine']['nproc']} cores "
        f"({results['machine']['cpu_model']}), shared by the load generator and the servers",
    ]
    params = results["parameters"]
    if "throughput" in results:
        tp = results["throughput"]
        lines += [
            "",
            f"POST /issues · wrk -t{params['threads']} -c{params['connections']} "
            f"-d{params['duration']}s (after {params['warmup']} s warm-up)",
            f"{'target':<12}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
            f"{'requests':>10}{'non-2xx':>9}{'sock err':>9}  CPU seconds while measured",
        ]
        names = ["baseline", "bare", *tp["ratios"]]
        for name in names:
            r = tp[name]
            lat = r["latency_ms"]
            cpu = ", ".join(f"{k} {v}" for k, v in r["server_cpu_s"].items())
            cpu += f", wrk {r['generator_cpu_s']}, other {r['other_cpu_s']}"
            lines.append(
                f"{name:<12}{r['requests_per_second']:>9.1f}{lat['p50']:>9.2f}{lat['p90']:>9.2f}"
                f"{lat['p99']:>9.2f}{lat['max']:>9.2f}{r['requests']:>10}{r['non_2xx']:>9}"
                f"{sum(r['socket_errors'].values()):>9}  {cpu}"
            )
        loads = ", ".join(
            f"{n} {tp[n]['idle_check_before_start']['load_1_5_15'][0]}" for n in names
        )
        lines.append(f"load average (1 min) before each target: {loads}")
        for name in names:
            rss = ", ".join(f"{k} {v}" for k, v in tp[name]["peak_rss_mb"].items())
            lines.append(f"{name} peak RSS MiB (VmHWM, load and catch-up): {rss}")
        for name, ratio in tp["ratios"].items():
            verdict = "met" if ratio >= 2.5 else "MISSED"
            lines.append(f"{name} / baseline: {ratio:.2f}x (target >= 2.5x: {verdict})")
            of_bare = tp["of_bare"][name]
            verdict = "met" if of_bare >= 0.5 else "MISSED"
            lines.append(f"{name} / bare async endpoint: {of_bare:.0%} (target >= 50 %: {verdict})")
        for name in tp["ratios"]:
            projection = tp[name]["projection"]
            caught_up = projection["caught_up_after_s"]
            lines.append(
                f"{name} projection: {projection['backlog_at_end_of_load']} of "
                f"{projection['stored_events']} issues not yet projected when the load stopped; "
                + (
                    f"caught up {caught_up} s later"
                    if caught_up is not None
                    else f"NOT caught up after {CATCH_UP_TIMEOUT_SECONDS:g} s"
                )
            )
            stream = tp[name]["stream"]
            relayed = ", ".join(f"{k} {v}" for k, v in stream["relayed_by"].items())
            lines.append(
                f"{name} stream: {stream['stream_messages']} messages for "
                f"{stream['stored_events']} stored events, {stream['distinct_event_ids']} "
                f"distinct ({'each once' if stream['each_once'] else 'NOT each once'}); "
                f"relayed by {relayed}"
            )
            for part in tp[name].get("per_replica", []):
                lines.append(f"  one wrk per replica: {part['requests_per_second']} req/s")
    if "latency" in results:
        la = results["latency"]
        total = la["submit_to_projection_ms"]
        post = la["post_only_ms"]
        verdict = "met" if total and total["p99"] < 100 else "MISSED"
        lines += [
            "",
            f"Submission to projection · open loop {la['target_rate']:g} req/s for "
            f"{la['duration_s']:g} s: {la['ok']} of {la['requests']} ok, errors {la['errors']}",
        ]
        if total:
            lines += [
                f"  POST + GET ?wait=5 ms: p50 {total['p50']}  p95 {total['p95']}  "
                f"p99 {total['p99']}  max {total['max']}  (target p99 < 100 ms: {verdict})",
                f"  POST alone ms:         p50 {post['p50']}  p95 {post['p95']}  "
                f"p99 {post['p99']}  max {post['max']}",
                f"  generator's max send lag: {la['max_send_lag_ms']} ms",
            ]
    return "\n".join(lines)


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    body = json.dumps(ISSUE, ensure_ascii=False).encode()
    token = Authenticator(Settings()).mint(OFFICE, ["clerk"], subject="bench")
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m bench.run", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "parameters": {**vars(args), "results_dir": str(args.results_dir), "body_bytes": len(body)},
    }
    try:
        if args.part in ("all", "throughput"):
            results["throughput"] = throughput(args, body, token)
        if args.part in ("all", "latency"):
            results["latency"] = projection_latency(args, body, token)
    except KeyboardInterrupt:
        print("interrupted; every process was stopped", file=sys.stderr)
        return 130
    print()
    print(report(results))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    print(f"\nwritten to {path}")
    failed = failed_requests(results)
    if failed:
        print("some requests failed: the figures above are not valid", file=sys.stderr)
    behind = views_behind(results)
    for problem in behind:
        print(problem, file=sys.stderr)
    return 1 if failed or behind else 0


def views_behind(results: dict[str, Any]) -> list[str]:
    """A pipeline whose projection did not hold every stored issue in time: the run fails,
    because its throughput would then be that of a pipeline that drops its read side."""
    problems = []
    for name, entry in results.get("throughput", {}).items():
        projection = entry.get("projection") if isinstance(entry, dict) else None
        if projection is not None and projection["caught_up_after_s"] is None:
            problems.append(
                f"{name}: the projection view did not catch up within "
                f"{CATCH_UP_TIMEOUT_SECONDS:g} s after the load ({projection['projected']} of "
                f"{projection['stored_events']} stored issues projected): the run FAILED"
            )
    return problems


def failed_requests(results: dict[str, Any]) -> int:
    """Non-2xx answers, socket errors and failed latency probes, all targets together."""
    failed = 0
    for entry in results.get("throughput", {}).values():
        if isinstance(entry, dict) and "non_2xx" in entry:
            failed += entry["non_2xx"] + sum(entry["socket_errors"].values())
            if not entry.get("stream", {"each_once": True})["each_once"]:
                failed += 1
    if latency_entry := results.get("latency"):
        failed += latency_entry["requests"] - latency_entry["ok"]
    return failed


if __name__ == "__main__":
    sys.exit(main())
