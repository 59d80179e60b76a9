"""A short chaos run (the trials of tests/support/chaos.py; bench/chaos.py runs a hundred):
the launcher heals each kill, and no acknowledged write is lost or doubled in its store, on its
stream or in the projections."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from tests.support.chaos import embedded_stack, run_trials, summary
from tests.support.stack import shangliang


def test_writes_survive_a_killed_service_a_killed_nats_server_and_a_kill_during_restart(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    with embedded_stack(tmp_path) as stack:
        results = asyncio.run(
            run_trials(
                stack,
                trials=3,
                workers=2,
                seed=16,
                say=lines.append,
                plan=[["intake"], ["nats-server"], ["supervision", "supervision"]],
                # A broken launcher never restarts it; a loaded 2-core machine may take 40 s.
                recover_timeout=60.0,
            )
        )
        status = subprocess.run(
            shangliang("status"),
            env={**os.environ, "SHANGLIANG_DATA_DIR": str(stack.data_dir)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    report = "\n".join([*lines, summary(results)])
    assert all(r.ok for r in results), report
    assert results[0].retries, f"intake was killed after the writes, not amid them:\n{report}"
    assert status.returncode == 0, status.stdout + status.stderr
    restarts = {line.split()[0]: int(line.split()[2]) for line in status.stdout.splitlines()[2:]}
    assert restarts == {
        "nats-server": 1,
        "intake": 1,
        "meetings": 0,
        "supervision": 2,
        "projections": 0,
        "notifications": 0,
        "console": 0,
    }, status.stdout
