"""Where intake's time goes on POST /issues (性能剖析): py-spy samples under bench.run's load.

    .venv/bin/python -m bench.profile_intake --duration 15

Starts the pipeline as `bench.run` does (SQLite), warms it up with wrk, then samples the
intake process with `py-spy record --gil` (only the thread holding the GIL: intake is bound
by one core of Python) while wrk sends the throughput bench's request. Prints the share of
samples in each part of a request's path (a sample counts for every part on its stack, so
shares overlap) and the functions with the most samples of their own. With `--flame` it also
writes a speedscope profile (https://www.speedscope.app opens it offline as a file too).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench import processes
from bench.run import ISSUE, OFFICE
from bench.wrk import run_wrk, write_script
from shared.auth import Authenticator
from shared.settings import Settings

PARTS: tuple[tuple[str, str], ...] = (
    ("HTTP server (uvicorn, httptools)", r"uvicorn/protocols/http/"),
    ("request limits middleware", r"shared/limits\.py"),
    ("metrics middleware", r"shared/observability\.py"),
    ("FastAPI/Starlette (middleware stack, routing, handling)", r"\((starlette|fastapi)/"),
    ("FastAPI's OpenTelemetry check", r"NativeTelemetry\.enabled "),
    ("hot path (services/intake/hot.py)", r"services/intake/hot\.py"),
    ("FastAPI dependencies (solve_dependencies)", r"(^|;)solve_dependencies "),
    (
        "request body: JSON and pydantic validation",
        r"(request_body_to_args|Request\.json|hot\.py:\d+\);(BaseModel\.model_validate|loads) )",
    ),
    ("token check (shared/auth.py)", r"shared/auth\.py"),
    ("route handler (services/intake/api.py)", r"(^|;)submit_issue \(services/intake/api\.py"),
    ("application (services/intake/application.py)", r"services/intake/application\.py"),
    ("domain: Issue.submit (services/intake/domain.py)", r"services/intake/domain\.py"),
    ("group commit, SQLite save (shared/eventstore.py)", r"shared/eventstore\.py"),
    ("eventsourcing (mapper, cipher, recorder)", r"\(eventsourcing/"),
    (
        "response: IssueView and its JSON",
        r"(serialize_response|IssueView\.of|hot\.py:\d+\);BaseModel\.model_dump_json) ",
    ),
    ("relay (shared/relay.py)", r"shared/relay\.py"),
    ("NATS client (nats-py)", r"\(nats/"),
    ("event loop and threads (asyncio, uvloop, threading)", r"\((asyncio/|uvloop|threading\.py)"),
)
"""The parts of a request's path and a pattern that finds one on a sampled stack (frames
"function (file:line)" joined by ";", the files shortened as `_short` does)."""

FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^()]*?):\d+\)$")


def summarize(raw: str, top: int = 25) -> dict[str, object]:
    """py-spy's collapsed stacks ("thread;frame;frame count" per line) as shares per part
    of the request's path and the functions most often on top of the stack."""
    total = 0
    parts: Counter[str] = Counter()
    own: Counter[str] = Counter()
    patterns = [(name, re.compile(pattern)) for name, pattern in PARTS]
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_shorten_frame(f) for f in stack.split(";")[1:]]  # the first: the thread
        joined = ";".join(frames)
        for name, pattern in patterns:
            if pattern.search(joined):
                parts[name] += count
        if frames:
            own[_LINE.sub("", frames[-1]) + ")"] += count
    share = {name: round(100 * parts[name] / total, 1) for name, _ in PARTS} if total else {}
    return {
        "samples": total,
        "inclusive_percent": share,
        "own_percent": {k: round(100 * v / total, 1) for k, v in own.most_common(top)},
    }


_LINE = re.compile(r":\d+\)$")


def _shorten_frame(frame: str) -> str:
    match = FRAME.match(frame)
    return frame if match is None else f"{match['function']} ({_short(match['file'])}:0)"


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="sampled seconds under load")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--flame", type=Path, help="also write a speedscope profile here")
    parser.add_argument("--json", type=Path, help="write the summary here too")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    args = parser.parse_args()
    body = json.dumps(ISSUE, ensure_ascii=False).encode()
    token = Authenticator(Settings()).mint(OFFICE, ["clerk"], subject="bench")
    with (
        tempfile.TemporaryDirectory(prefix="shangliang-profile-") as tmp,
        processes.event_store("sqlite", Path(tmp), "test") as store,
        processes.pipeline(Path(tmp), store) as target,
    ):
        workdir = Path(tmp)
        script = write_script(workdir / "post_issue.lua", body, token)
        url = f"{target.base_url}/issues"
        run_wrk(url, script, connections=args.connections, threads=1, duration_s=args.warmup)
        raw = workdir / "intake.collapsed"
        pid = str(target.pids["intake"])
        common = ["--pid", pid, "--gil", "--nonblocking", "--rate", str(args.rate)]
        profilers = [
            ["py-spy", "record", *common, "-d", str(args.duration), "-f", "raw", "-o", str(raw)]
        ]
        if args.flame is not None:
            profilers.append(
                [
                    *("py-spy", "record", *common, "-d", str(args.duration)),
                    *("-f", "speedscope", "-o", str(args.flame.resolve())),
                ]
            )
        load: dict[str, object] = {}

        def generate() -> None:
            result = run_wrk(
                url, script, connections=args.connections, threads=1, duration_s=args.duration + 2
            )
            load.update(result.as_dict())

        generator = threading.Thread(target=generate)
        generator.start()
        venv_bin = Path(sys.executable).parent
        for argv in profilers:
            argv[0] = str(venv_bin / "py-spy")
        running = [
            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for argv in profilers
        ]
        for profiler in running:
            _, errors = profiler.communicate()
            if profiler.returncode != 0:
                raise SystemExit(f"py-spy failed: {errors.decode(errors='replace')}")
        generator.join()
        summary = summarize(raw.read_text())
        if args.raw is not None:
            args.raw.write_text(raw.read_text())
    summary["load"] = {k: load[k] for k in ("requests_per_second", "requests", "non_2xx")}
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
