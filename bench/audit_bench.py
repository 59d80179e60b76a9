"""What auditing costs the event store (审计留痕的开销): the same issues saved and read back
with and without an actor on each event, side by side in one run.

    .venv/bin/python -m bench.audit_bench [--events 20000] [--chunk 200] [--rounds 3]

Intake on SQLite in a temporary folder. Each round saves `--events` issues through the group
commit path (`stamp` then `save`, `--chunk` per transaction), then reads the notification log
back as the relay does (`audited_event`: decode and the actor), then loads each aggregate as a
request does (`repository.get`), then times the mapper alone in CPU time (encode and decode
one event). The plain run does the same without an actor. Prints the best round of each,
and the stored bytes per event.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from services.intake.application import IntakeApplication
from services.intake.domain import Issue, issue_id_for
from shared.audit import audited_event, stamp
from shared.contracts import Actor

ACTOR = Actor(
    subject="yanji-3f2a9c1e",
    office="yanji",
    role="clerk",
    roles=["clerk"],
    request_id="5c1d0c3a9e7b4f2a8d6e1b0c",
)
SUBMITTED = datetime(2020, 6, 4, 7, 30, tzinfo=UTC)


def issues(marker: str, count: int) -> list[Issue]:
    return [
        Issue.submit(
            issue_id_for("yanji", f"{marker}-{n}"),
            "yanji",
            "小区路灯损坏",
            "进学街道某小区路灯夜间不亮，居民出行不便",
            "城市管理",
            SUBMITTED,
            now=SUBMITTED,
        )
        for n in range(count)
    ]


def one_round(folder: Path, name: str, events: int, chunk: int, audited: bool) -> dict[str, float]:
    db = folder / f"{name}.sqlite"
    app = IntakeApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)}
    )
    try:
        made = issues(name, events)
        started = time.perf_counter()
        for start in range(0, events, chunk):
            batch = [e for issue in made[start : start + chunk] for e in issue.collect_events()]
            stamp(batch, ACTOR if audited else None)
            app.save(*batch)
        saved = time.perf_counter() - started

        started = time.perf_counter()
        position = 0
        while notifications := app.recorder.select_notifications(
            position, 1000, inclusive_of_start=False
        ):
            for notification in notifications:
                audited_event(app.mapper, notification)
            position = notifications[-1].id
        relayed = time.perf_counter() - started

        started = time.perf_counter()
        for issue in made:
            app.repository.get(issue.id)
        loaded = time.perf_counter() - started

        # CPU time of the mapper alone (encode, then decode with the actor): what auditing
        # adds per event, less disturbed by other processes than the wall-clock figures.
        fresh = [e for issue in issues(f"{name}-cpu", events) for e in issue.collect_events()]
        stamp(fresh, ACTOR if audited else None)
        started = time.process_time()
        for domain_event in fresh:
            audited_event(app.mapper, app.mapper.to_stored_event(domain_event))
        mapper_cpu = time.process_time() - started
    finally:
        app.close()
    with sqlite3.connect(db) as connection:
        (stored_bytes,) = connection.execute(
            "SELECT sum(length(state)) FROM stored_events"
        ).fetchone()
    return {
        "save": events / saved,
        "relay_read": events / relayed,
        "load": events / loaded,
        "mapper_us": mapper_cpu / events * 1e6,
        "bytes": stored_bytes / events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in range(args.rounds):
            # Alternate which goes first, so neither always gets the warmer machine.
            order = (True, False) if n % 2 == 0 else (False, True)
            for audited in order:
                label = "audited" if audited else "plain"
                got = one_round(Path(folder), f"{label}{n}", args.events, args.chunk, audited)
                mine = best.setdefault(label, got)
                for key in ("save", "relay_read", "load"):
                    mine[key] = max(mine[key], got[key])
                mine["mapper_us"] = min(mine["mapper_us"], got["mapper_us"])
    print(f"{args.events} events, {args.chunk} per transaction, best of {args.rounds}")
    print(
        f"{'':8} {'save ev/s':>10} {'relay ev/s':>11} {'load agg/s':>11} "
        f"{'mapper µs/ev (CPU)':>19} {'bytes/ev':>9}"
    )
    for label, got in best.items():
        print(
            f"{label:8} {got['save']:>10,.0f} {got['relay_read']:>11,.0f} "
            f"{got['load']:>11,.0f} {got['mapper_us']:>19.1f} {got['bytes']:>9,.0f}"
        )


if __name__ == "__main__":
    main()
