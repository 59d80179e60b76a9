"""The chaos run (随机杀进程): writes go on while a random process of the stack is SIGKILLed
(the trials are tests/support/chaos.py's, the suite runs a few of them).

    .venv/bin/python -m bench.chaos                       # 100 trials on the embedded default
    .venv/bin/python -m bench.chaos --trials 5 --workers 2 --seed 7
    .venv/bin/python -m bench.chaos --cluster             # 20 on the 3-node cluster, PostgreSQL

Starts `shangliang up` (SQLite stores, its own nats-server) in a temporary folder. Each trial:
a client writes a realistic mix — issues with an Idempotency-Key, their screenings, written
consultations with the issues as topics, referral cases through letter, acknowledgement,
completion and verification — retrying each write with the same key until it gets a 2xx,
while one process (intake, meetings, supervision, projections or nats-server) is SIGKILLed
at a random moment, in some trials twice in a row. Once the launcher has restarted it and
the client is done, the trial checks every acknowledged write: its event is in its store
exactly once, on its stream exactly once, and counted once by projections (the year's
figures, and `shangliang projections check` exits 0). Prints one line per trial and the
totals (lost, doubled, time to recover p50 / p99); exits 1 if anything was lost or doubled.

`--cluster`: the same trials on the shared system as deploy/compose.yaml runs it
(tests/support/cluster.py): three nats-server nodes from deploy/nats/cluster/node.conf with
R3 streams, a PostgreSQL of the run's own (initdb into a temporary folder, on a free port)
holding every store, and the services on them; each of these is a supervised child,
restarted when it dies. The process killed is a service, one of the three nodes or
PostgreSQL, at a random moment in the first 15 s of at least 20 s of writing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from shared.auth import Authenticator
from shared.settings import Settings
from shared.web import STORE_FULL
from tests.support.chaos import (
    APPLICATIONS,
    STREAM_TARGETS,
    TARGETS,
    Client,
    Pace,
    Tally,
    TrialResult,
    by_target,
    cluster_trial_stack,
    embedded_stack,
    issue_body,
    run_trials,
    summary,
    verify,
)
from tests.support.cluster import NODES
from tests.support.disk import fill, tmpfs
from tests.support.stack import RunningStack

# --- a full disk ---------------------------------------------------------------------------------


def stored_rows(data_dir: Path) -> dict[str, int]:
    rows = {}
    for application in APPLICATIONS.values():
        path = data_dir / f"{application}.sqlite"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            rows[application] = int(db.execute("SELECT count(*) FROM stored_events").fetchone()[0])
        db.close()
    return rows


async def disk_full(stack: RunningStack, refused_writes: int, say: Callable[[str], None]) -> bool:
    """Writes while the data folder's disk is full: each refused with 503 and a clear
    message, nothing stored; once space returns the same writes (same keys) land once."""
    client = Client(stack, Authenticator(Settings()), run=f"full-{uuid.uuid4().hex[:6]}")
    tally = Tally()
    result = TrialResult(0, ["disk full"])
    try:
        acks, before_tally = await client.unit("before", "refer")
        tally.add(before_tally)
        filler = fill(stack.data_dir)
        rows = stored_rows(stack.data_dir)
        answers: Counter[str] = Counter()
        for n in range(refused_writes):
            try:
                response = await client.attempt(
                    "intake", "/issues", "clerk", f"full-{n}-issue", issue_body(f"full-{n}")
                )
                message = str(response.json().get("message", ""))[:60]
                answers[f"HTTP {response.status_code} {message}"] += 1
            except (httpx.HTTPError, ValueError) as error:
                answers[type(error).__name__] += 1
        half_stored = stored_rows(stack.data_dir) != rows
        filler.unlink()
        freed = time.monotonic()
        done = await asyncio.gather(
            *(client.unit(f"full-{n}", "refer") for n in range(refused_writes))
        )
        for unit_acks, unit_tally in done:
            acks += unit_acks
            tally.add(unit_tally)
        result.recover_seconds.append(time.monotonic() - freed)
        result.writes, result.retries, result.refused = (
            client.writes,
            client.retries,
            client.refused,
        )
        await verify(stack, client, acks, tally, result)
    finally:
        await client.close()
    say(f"disk full: {refused_writes} writes answered {dict(answers)}")
    say(f"disk full: stored rows changed while full: {half_stored}")
    say(f"disk full, then space freed: {result.line()}")
    for problem in [*result.lost, *result.doubled, *result.refused]:
        say(f"    {problem}")
    refused_right = set(answers) == {f"HTTP 503 {STORE_FULL[:60]}"}
    return refused_right and not half_stored and result.ok


# --- the cluster ---------------------------------------------------------------------------------

CLUSTER_KINDS = ("intake", "meetings", "supervision", "projections", "notifications", "node")
CLUSTER_KINDS += ("postgres",)
"""What a cluster trial kills: a service, one of the nodes (`node`, chosen at random), or
PostgreSQL; the console, which holds no state, is left to the embedded trials."""
CLUSTER_PACE = Pace(window=15.0, least_seconds=20.0)


def kill_plan(rng: random.Random, trials: int, cluster: bool) -> list[list[str]]:
    """What each trial kills, in 30 % of them twice in a row. The cluster's few trials go
    through its kinds in shuffled rounds, and through the nodes likewise, so that each is
    killed about as often."""
    if not cluster:
        targets = [rng.choice(TARGETS) for _ in range(trials)]
    else:
        kinds = rounds(rng, CLUSTER_KINDS, trials)
        nodes = iter(rounds(rng, NODES, kinds.count("node")))
        targets = [next(nodes) if k == "node" else k for k in kinds]
    return [[target] * (2 if rng.random() < 0.3 else 1) for target in targets]


def rounds(rng: random.Random, items: tuple[str, ...], count: int) -> list[str]:
    """`count` of `items`: each once in a shuffled order, then again, and so on."""
    drawn: list[str] = []
    while len(drawn) < count:
        drawn += rng.sample(items, len(items))
    return drawn[:count]


# --- the run -------------------------------------------------------------------------------------


def run(options: argparse.Namespace, folder: Path, say: Callable[[str], None]) -> bool:
    """The trials and scenarios the options ask for, in `folder`; whether all passed."""
    started = time.monotonic()
    ok = True
    if options.trials or options.streams:
        rng = random.Random(options.seed)
        plan = kill_plan(rng, options.trials, options.cluster)
        streams = options.stream_targets
        plan += [[streams[n % len(streams)]] for n in range(options.streams)]
        if options.cluster:
            stacked, pace = cluster_trial_stack(folder / "stack"), CLUSTER_PACE
        else:
            stacked, pace = embedded_stack(folder / "stack"), Pace()
        with stacked as stack:
            results = asyncio.run(
                run_trials(stack, len(plan), options.workers, options.seed, say, plan, pace=pace)
            )
        say(f"{summary(results)} in {time.monotonic() - started:.0f} s")
        for line in by_target(results):
            say(f"  {line}")
        ok = all(r.ok for r in results)
    if options.disk_full:
        with tmpfs(folder / "full", "96m") as mount, embedded_stack(mount) as stack:
            ok &= asyncio.run(disk_full(stack, 5, say))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trials", type=int, help="trials that kill a process (100; with --cluster 20)"
    )
    parser.add_argument(
        "--cluster", action="store_true", help="on 3 nats-server nodes and PostgreSQL"
    )
    parser.add_argument("--streams", type=int, default=0, help="trials that delete or purge")
    parser.add_argument(
        "--stream-targets", nargs="+", default=list(STREAM_TARGETS), choices=STREAM_TARGETS
    )
    parser.add_argument("--disk-full", action="store_true", help="then a full disk (root)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the folder with every log (kept on failure)"
    )
    parser.add_argument("--workers", type=int, default=3, help="concurrent writers")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    options = parser.parse_args()
    if options.trials is None:
        options.trials = 20 if options.cluster else 100
    # The check's own connection says when it closes: not news here.
    logging.getLogger("shared.messaging").setLevel(logging.ERROR)
    say = lambda text: print(text, flush=True)  # noqa: E731
    say(
        f"seed {options.seed}, {options.trials} kill trials, {options.streams} stream trials, "
        f"{options.workers} writers, {'cluster' if options.cluster else 'embedded'}; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    started = time.monotonic()
    ok = False
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    try:
        ok = run(options, folder, say)
    finally:
        if ok and not options.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            say(f"every process's log is kept in {folder}")
        say(f"{time.monotonic() - started:.0f} s in all; load {os.getloadavg()[0]:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
