"""The fuzz soak (模糊测试长跑): tests/e2e/test_fuzz.py's check at 10,000 cases per service.

    .venv/bin/python -m bench.fuzz_soak                    # 10,000 cases per service
    .venv/bin/python -m bench.fuzz_soak --cases 2000 --seed 7 --services intake meetings

Starts `shangliang up` (SQLite stores) in a temporary folder, loads a little of everything,
then fuzzes one service after the other. Prints per service the cases, the time, the answers
by status, the stored count before and after, and every failure; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from shared.auth import Authenticator
from shared.settings import Settings
from tests.support.fuzzing import SERVICES, fuzz, seed_stack, store_table, targets, wait_quiet
from tests.support.stack import launch_stack, wait_ready


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="per service")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    parser.add_argument("--services", nargs="+", choices=SERVICES, default=list(SERVICES))
    options = parser.parse_args()

    authenticator = Authenticator(Settings())

    def mint(office: str, *roles: str, department: str | None = None) -> str:
        return authenticator.mint(office, list(roles), subject="fuzz-soak", department=department)

    failed = False
    with tempfile.TemporaryDirectory(prefix="fuzz-soak-") as folder:
        stack = launch_stack(
            Path(folder), {"SHANGLIANG_SUPERVISION_SCAN_INTERVAL_SECONDS": "86400"}
        )
        process = stack.process
        try:
            wait_ready(stack)
            services = targets(stack, mint, seed_stack(stack, mint))
            print(f"seed {options.seed}, {options.cases} cases per service", flush=True)
            for name in options.services:
                wait_quiet([t.store for t in services.values()], store_table)
                report = fuzz(services[name], options.cases, options.seed)
                print(f"{name}: {report.summary()}", flush=True)
                for failure in report.failures:
                    print(f"  {failure}", flush=True)
                failed |= bool(report.failures)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
