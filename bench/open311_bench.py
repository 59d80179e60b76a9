"""Open311 POST beside POST /issues through the whole pipeline (nats-server, intake with its
relay, projections consuming during the load): `python -m bench.open311_bench`.

One pipeline serves both. The rounds alternate (issues, Open311, issues, Open311, …) so that
whatever else loads the shared machine falls on both alike. Every request carries a
description of its own (a counter per wrk thread), so each one stores a new issue: an Open311
request with the same fields would be a retry answered with the first issue. After each round,
the time until the projection holds every issue stored so far. With `--profile N`, then N
seconds of py-spy on intake under the Open311 load (as bench/profile_intake.py samples it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench import processes
from bench.profile_intake import summarize
from bench.run import ISSUE, OFFICE, cpu_window, machine
from bench.wrk import _SCRIPT, RESULT_MARKER, lua_string, run_wrk
from shared.auth import Authenticator
from shared.settings import Settings

MARK = "@@N@@"
"""Where the script puts each request's own number in the body."""


def script(path: Path, body: str, content_type: str, token: str | None, run: str) -> Path:
    """wrk's script from bench/wrk.py, with a body of its own per request (`run` keeps the
    numbers of one run apart from another's)."""
    prefix, suffix = body.split(MARK)
    prefix += f"{run}-"
    text = _SCRIPT.format(
        body='""',
        authorization=lua_string(f"Bearer {token}".encode()) if token else '""',
        marker=RESULT_MARKER,
    )
    text = text.replace('"application/json"', lua_string(content_type.encode()))
    if token is None:
        text = text.replace('wrk.headers["Authorization"] = ""\n', "")
    text = text.replace(
        "function setup(thread)\n  table.insert(threads, thread)\n",
        'function setup(thread)\n  table.insert(threads, thread)\n  thread:set("tid", #threads)\n',
    )
    text += (
        "local counter = 0\n"
        "function request()\n"
        "  counter = counter + 1\n"
        f'  return wrk.format(nil, nil, nil, {lua_string(prefix.encode())} .. tid .. "-" .. '
        f"counter .. {lua_string(suffix.encode())})\n"
        "end\n"
    )
    path.write_text(text)
    return path


def post_json(url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        result: dict[str, Any] = json.loads(answer.read())
        return result


def caught_up(target: processes.Target, issues: int, timeout: float = 120.0) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if target.projected_issues() >= issues:
            return round(time.monotonic() - started, 2)
        time.sleep(0.05)
    return None


def profile(
    target: processes.Target, url: str, lua: Path, seconds: int, connections: int
) -> dict[str, Any]:
    """py-spy's samples of intake (the thread holding the GIL) while wrk sends `lua`."""
    raw = lua.with_suffix(".collapsed")
    load: dict[str, Any] = {}

    def generate() -> None:
        result = run_wrk(url, lua, connections=connections, threads=1, duration_s=seconds + 2)
        load.update(result.as_dict())

    generator = threading.Thread(target=generate)
    generator.start()
    py_spy = str(Path(sys.executable).parent / "py-spy")
    pid = str(target.pids["intake"])
    argv = [py_spy, "record", "--pid", pid, "--gil", "--nonblocking", "--rate", "250"]
    argv += ["-d", str(seconds), "-f", "raw", "-o", str(raw)]
    sampled = subprocess.run(argv, capture_output=True)
    generator.join()
    if sampled.returncode != 0:
        raise SystemExit(f"py-spy failed: {sampled.stderr.decode(errors='replace')}")
    summary = summarize(raw.read_text())
    summary["requests_per_second"] = load.get("requests_per_second")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.open311_bench", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--profile", type=int, default=0, help="seconds of py-spy afterwards")
    args = parser.parse_args(argv)

    settings = Settings()
    authenticator = Authenticator(settings)
    clerk = authenticator.mint(OFFICE, ["clerk"], subject="bench-clerk")
    admin = authenticator.mint(OFFICE, ["admin"], subject="bench-admin")
    issue_body = json.dumps(
        {**ISSUE, "description": ISSUE["description"] + MARK}, ensure_ascii=False
    )
    results: dict[str, Any] = {
        "machine": machine(),
        "load_average_before": os.getloadavg(),
        "rounds": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix="shangliang-bench-open311-") as tmp,
        processes.event_store("sqlite", Path(tmp), "test") as store,
        processes.pipeline(Path(tmp), store) as target,
    ):
        workdir = Path(tmp)
        key = post_json(
            f"{target.base_url}/open311/keys", {"office": OFFICE, "label": "bench"}, admin
        )["api_key"]
        form = urllib.parse.urlencode(
            {
                "api_key": key,
                "jurisdiction_id": OFFICE,
                "service_code": ISSUE["category"],
                "lat": "42.9048",
                "long": "129.5061",
                "description": ISSUE["description"],
            }
        )
        targets = {
            "POST /issues": (
                f"{target.base_url}/issues",
                issue_body,
                "application/json",
                clerk,
            ),
            "POST /open311/v2/requests.json": (
                f"{target.base_url}/open311/v2/requests.json",
                form + urllib.parse.quote(MARK, safe="@"),
                "application/x-www-form-urlencoded",
                None,
            ),
        }
        runs = iter(range(1_000_000))

        def lua_for(body: str, content_type: str, token: str | None) -> Path:
            run = f"r{next(runs)}"
            return script(workdir / f"{run}.lua", body, content_type, token, run)

        for url, *how in targets.values():
            lua = lua_for(*how)
            run_wrk(url, lua, connections=args.connections, threads=1, duration_s=args.warmup)
        for round_number in range(args.rounds):
            for name, (url, *how) in targets.items():
                lua = lua_for(*how)
                before = target.stored_events()
                used = cpu_window(target.pids)
                result = run_wrk(
                    url, lua, connections=args.connections, threads=1, duration_s=args.duration
                )
                cpu = used()
                stored = target.stored_events() - 1  # every event but the key's is an issue
                entry = {
                    "new_issues": stored + 1 - before,
                    "round": round_number + 1,
                    "target": name,
                    **result.as_dict(),
                    "server_cpu_s": cpu,
                    "projection_caught_up_after_s": caught_up(target, stored),
                    "issues_stored_so_far": stored,
                    "load_average": os.getloadavg(),
                }
                results["rounds"].append(entry)
                print(
                    f"round {round_number + 1} {name}: {result.requests_per_second:.0f} req/s, "
                    f"p50 {result.latency_ms['p50']} ms, p99 {result.latency_ms['p99']} ms, "
                    f"non-2xx {result.non_2xx}, intake CPU "
                    f"{1000 * cpu['intake'] / max(result.requests, 1):.2f} ms/request, "
                    f"projection caught up after {entry['projection_caught_up_after_s']} s, "
                    f"load {entry['load_average'][0]:.2f}",
                    flush=True,
                )
        if args.profile:
            url, *how = targets["POST /open311/v2/requests.json"]
            results["profile"] = profile(target, url, lua_for(*how), args.profile, args.connections)
            print(json.dumps(results["profile"], indent=2, ensure_ascii=False), flush=True)
    totals: dict[str, list[float]] = {}
    for entry in results["rounds"]:
        totals.setdefault(entry["target"], []).append(entry["requests_per_second"])
    means = {name: sum(v) / len(v) for name, v in totals.items()}
    ratio = means["POST /open311/v2/requests.json"] / means["POST /issues"]
    results["mean_requests_per_second"] = {k: round(v, 1) for k, v in means.items()}
    results["ratio_open311_to_issues"] = round(ratio, 3)
    print(f"mean req/s: {results['mean_requests_per_second']}; Open311 / issues = {ratio:.3f}")
    out = processes.REPO / "bench" / "results" / f"open311-{int(time.time())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
