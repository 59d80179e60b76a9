"""Closed-loop load with wrk: N connections POST the same issue as fast as they are answered."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCH_RESULT "

_SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {authorization}

local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non_2xx = 0
  first_non_2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    if first_non_2xx == 0 then first_non_2xx = status end
  end
end

function done(summary, latency, requests)
  local non, first = 0, 0
  for _, thread in ipairs(threads) do
    non = non + thread:get("non_2xx")
    if first == 0 then first = thread:get("first_non_2xx") end
  end
  local e = summary.errors
  io.write(string.format(
    '{marker}{{"requests": %d, "duration_us": %d, "non_2xx": %d, "first_non_2xx": %d, '
    .. '"errors": {{"connect": %d, "read": %d, "write": %d, "timeout": %d}}, '
    .. '"latency_us": {{"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}}}\\n',
    summary.requests, summary.duration, non, first,
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    non_2xx: int
    first_non_2xx: int
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    generator_cpu_s: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.duration_s

    @property
    def failed(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "requests_per_second": round(self.requests_per_second, 1),
            "non_2xx": self.non_2xx,
            "first_non_2xx_status": self.first_non_2xx or None,
            "socket_errors": self.socket_errors,
            "latency_ms": self.latency_ms,
            "generator_cpu_s": round(self.generator_cpu_s, 2),
        }


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise FileNotFoundError(
            "wrk not found: install it with `apt-get install -y wrk` (Debian/Ubuntu) or "
            "`brew install wrk` (macOS)"
        )
    return found


def wrk_version() -> str:
    completed = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    return (completed.stdout or completed.stderr).splitlines()[0].strip()


def lua_string(data: bytes) -> str:
    """A Lua string literal holding exactly these bytes (UTF-8 included)."""
    safe = (chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}" for b in data)
    return '"' + "".join(safe) + '"'


def write_script(path: Path, body: bytes, token: str) -> Path:
    path.write_text(
        _SCRIPT.format(
            body=lua_string(body),
            authorization=lua_string(f"Bearer {token}".encode()),
            marker=RESULT_MARKER,
        )
    )
    return path


def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    threads: int,
    duration_s: int,
    timeout_s: int = 10,
) -> WrkResult:
    """Run wrk once; its CPU time is measured too (it shares the cores with the servers)."""
    argv = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={timeout_s}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:
        try:
            stdout, stderr = wrk.communicate(timeout=duration_s + timeout_s + 30)
        except BaseException:
            wrk.kill()
            wrk.wait()
            raise
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if wrk.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({wrk.returncode}):\n{stdout}\n{stderr}")
    raw = json.loads(lines[-1].removeprefix(RESULT_MARKER))
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        non_2xx=raw["non_2xx"],
        first_non_2xx=raw["first_non_2xx"],
        socket_errors=raw["errors"],
        latency_ms={k: round(v / 1000, 2) for k, v in raw["latency_us"].items()},
        generator_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


def run_wrk_on_each(
    urls: tuple[str, ...],
    script: Path,
    *,
    connections: int,
    threads: int,
    duration_s: int,
) -> tuple[WrkResult, list[WrkResult]]:
    """One wrk per URL (wrk loads one host), all started together, the connections shared
    out between them. Returns the sum (latency: the worst of the parts) and the parts."""
    if len(urls) == 1:
        result = run_wrk(
            urls[0], script, connections=connections, threads=threads, duration_s=duration_s
        )
        return result, [result]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with ThreadPoolExecutor(len(urls)) as pool:
        parts = list(
            pool.map(
                lambda url: run_wrk(
                    url,
                    script,
                    connections=connections // len(urls),
                    threads=threads,
                    duration_s=duration_s,
                ),
                urls,
            )
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = sum(p.requests for p in parts)
    total = WrkResult(
        requests=requests,
        # The parts ran over the same seconds: the sum of their rates is requests / mean time.
        duration_s=sum(p.duration_s for p in parts) / len(parts),
        non_2xx=sum(p.non_2xx for p in parts),
        first_non_2xx=next((p.first_non_2xx for p in parts if p.first_non_2xx), 0),
        socket_errors={k: sum(p.socket_errors[k] for p in parts) for k in parts[0].socket_errors},
        latency_ms={
            k: (
                round(sum(p.latency_ms[k] * p.requests for p in parts) / max(requests, 1), 2)
                if k == "mean"
                else max(p.latency_ms[k] for p in parts)
            )
            for k in parts[0].latency_ms
        },
        generator_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )
    # A part's own generator CPU also counts the other wrk if it ended first: use the total's.
    return total, parts
