"""The workbench's list pages with the 2020 scenario loaded: time per page, page weight, and
the console page beside the API call it is made of, measured in the same run.

`python -m bench.console_bench [--requests 200]`: starts `shangliang up` on free ports, loads
the scenario through the APIs, logs a yanji account in, then asks each list page and its
underlying API call in turn (one after the other, so that both see the same load) and prints
p50 / p95 in milliseconds, the ratio of the two p95s, and each page's weight (HTML + the CSS
and script it loads).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from demo.load import load_scenario
from services.console.main import accounts_of
from services.console.settings import ConsoleSettings
from shared.auth import Authenticator
from shared.settings import Settings
from tests.support.stack import launch_stack, wait_ready

PASSWORD = "console-bench-password"
# (console page, the account's role, the service and path of the one API call behind it)
PAGES = [
    ("/issues", "clerk", "projections", "/issues?page=1&page_size=20"),
    ("/screening", "leader", "intake", "/issues?office=yanji&status=submitted&page=1&page_size=20"),
    ("/cases", "supervisor", "supervision", "/cases?page=1&page_size=20"),
    ("/meetings", "meetings", "meetings", "/meetings?office=yanji&page=1&page_size=20"),
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def log_in(console: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=console, timeout=30)
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post("/login", data={"csrf": token[1], "name": name, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


def timed(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    answer = client.get(path, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    return elapsed


def weight(client: httpx.Client, path: str) -> int:
    page = client.get(path)
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    return len(page.content) + sum(len(client.get(asset).content) for asset in assets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per page and per API call")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-bench-") as folder:
        stack = launch_stack(
            Path(folder), {"SHANGLIANG_SUPERVISION_SCAN_INTERVAL_SECONDS": "86400"}
        )
        try:
            wait_ready(stack, timeout=180)
            settings = Settings(data_dir=stack.data_dir)
            authenticator = Authenticator(settings)
            urls = {
                name: getattr(stack, name)
                for name in ("intake", "meetings", "supervision", "projections")
            }
            load = load_scenario(authenticator, urls)
            print(f"scenario loaded: {load.writes} writes, figures ok: {load.ok}", flush=True)
            accounts = accounts_of(settings, ConsoleSettings())
            print(f"load average before: {os.getloadavg()}", flush=True)
            print("page | console p50 / p95 ms | API p50 / p95 ms | p95 ratio | page weight")
            for page, role, service, api_path in PAGES:
                name = f"bench-{role}"
                if accounts.store.get(name) is None:
                    accounts.add(name, "yanji", [role], PASSWORD, None)
                console = log_in(stack.console, name)
                api = httpx.Client(base_url=urls[service], timeout=30)
                token = {"Authorization": f"Bearer {authenticator.mint('yanji', [role])}"}
                pages, calls = [], []
                for _ in range(options.requests):
                    pages.append(timed(console, page))
                    calls.append(timed(api, api_path, token))
                print(
                    f"{page} | {statistics.median(pages):.1f} / {percentile(pages, 0.95):.1f} | "
                    f"{statistics.median(calls):.1f} / {percentile(calls, 0.95):.1f} | "
                    f"{percentile(pages, 0.95) / percentile(calls, 0.95):.2f} | "
                    f"{weight(console, page) / 1024:.1f} KB",
                    flush=True,
                )
                console.close()
                api.close()
            print(f"load average after: {os.getloadavg()}", flush=True)
        finally:
            stack.process.send_signal(signal.SIGTERM)
            try:
                stack.process.wait(15)
            except subprocess.TimeoutExpired:
                stack.process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
