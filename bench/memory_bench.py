"""Memory of the services with many issues stored (内存): peak RSS of each process.

    .venv/bin/python -m bench.memory_bench --issues 100000

Stores N issues (the throughput bench's body) in a fresh intake event store, then starts
the pipeline on it as `bench.run` does (nats-server, intake, projections): intake's relay
publishes all N, projections applies them. Each process's high-water mark of resident
memory (VmHWM) is read when the view holds every issue, and again after the reads whose
memory grows with the issues: intake's `GET /issues` (the first catches its catalog table
up with every issue, services/intake/catalog.py) and the projections' list and statistics.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.processes import event_store, peak_rss_mb, pipeline
from bench.run import ISSUE, OFFICE
from services.intake.application import IntakeApplication
from services.intake.domain import Issue, issue_id_for
from services.intake.settings import IntakeSettings, cipher_environment
from shared.auth import Authenticator
from shared.settings import Settings

CATCH_UP_TIMEOUT_SECONDS = 1800.0


def store_issues(env: dict[str, str], count: int, chunk: int = 2000) -> None:
    app = IntakeApplication(env=env)
    submitted_at = datetime.fromisoformat(ISSUE["submitted_at"])
    try:
        for first in range(0, count, chunk):
            now = datetime.now(UTC)
            app.save(
                *[
                    Issue.submit(
                        issue_id_for(OFFICE, f"memory-{n}"),
                        OFFICE,
                        ISSUE["title"],
                        ISSUE["description"],
                        ISSUE["category"],
                        submitted_at,
                        now=now,
                    )
                    for n in range(first, min(first + chunk, count))
                ]
            )
    finally:
        app.close()


def get(url: str, token: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as answer:
        answer.read()
    return round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-dbname", default="test")
    args = parser.parse_args()
    authenticator = Authenticator(Settings())
    clerk = authenticator.mint(OFFICE, ["clerk"], subject="bench")
    viewer = authenticator.mint("yanbian", ["viewer"], subject="bench")
    results: dict[str, Any] = {"issues": args.issues, "store": args.store}
    with (
        tempfile.TemporaryDirectory(prefix="shangliang-memory-bench-") as tmp,
        event_store(args.store, Path(tmp), args.postgres_dbname) as store,
    ):
        started = time.perf_counter()
        # Encrypted as the service stores them, with the key it finds in the data folder.
        cipher = cipher_environment(store.settings, IntakeSettings())
        store_issues({**store.env("intake"), **cipher}, args.issues)
        results["store_s"] = round(time.perf_counter() - started, 1)
        print(f"stored {args.issues:,} issues in {results['store_s']} s", flush=True)
        with pipeline(Path(tmp), store) as target:
            assert target.projections_url is not None
            started = time.perf_counter()
            while target.projected_issues() < args.issues:
                if time.perf_counter() - started > CATCH_UP_TIMEOUT_SECONDS:
                    raise SystemExit(f"the view did not catch up in {CATCH_UP_TIMEOUT_SECONDS} s")
                time.sleep(1.0)
            results["projected_s"] = round(time.perf_counter() - started, 1)
            print(f"projected in {results['projected_s']} s", flush=True)
            rss = {n: peak_rss_mb(pid) for n, pid in target.pids.items()}
            results["peak_rss_mb_relayed_and_projected"] = rss
            results["reads_s"] = {
                "intake GET /issues": get(f"{target.base_url}/issues?page_size=50", clerk),
                # Caught up by the first: what a list costs from then on.
                "intake GET /issues again": get(f"{target.base_url}/issues?page_size=50", clerk),
                "intake GET /issues?page=100": get(
                    f"{target.base_url}/issues?page=100&page_size=50", clerk
                ),
                "projections GET /issues": get(
                    f"{target.projections_url}/issues?page=100&page_size=200", viewer
                ),
                "projections GET /statistics/2024": get(
                    f"{target.projections_url}/statistics/2024", viewer
                ),
            }
            rss = {n: peak_rss_mb(pid) for n, pid in target.pids.items()}
            results["peak_rss_mb_after_reads"] = rss
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
