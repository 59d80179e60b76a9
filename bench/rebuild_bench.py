"""Rebuild speed (重建速度): `projections rebuild` beside a raw ordered-consumer → SQLite loop.

Both read the same three streams of a generated history from a nats-server of their own,
one after the other in the same run, with the same batch size and SQLite settings (WAL,
synchronous NORMAL, one transaction per batch):

- raw: an ordered consumer per stream; each message's JSON is parsed and its id, type and
  data are written with one `executemany` per batch into one table. The floor of any
  consumer that stores what it reads.
- rebuild: `services.projections.rebuild.rebuild` into a new file (without switching): a
  pull consumer read over a plain connection (pull.py), decoding into contracts and facts
  in a worker process (and in this one when the worker lags), every entity derived once at
  the end, counters, indexes, tracking records, the file fsynced.

Beside the wall time each run prints the CPU seconds each side used (this process and the
rebuild's worker): on a machine that other jobs load, the CPU time moves less than the
wall time.

With `--runs N` both are measured N times, alternately, against the same published streams
(publishing a million events takes longer than reading them); the machine's load average is
printed beside each run, as other jobs on it move the rates.

    python -m bench.rebuild_bench --issues 45000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.projections.rebuild import UPSTREAMS, rebuild
from shared.embedded import EmbeddedNats
from shared.messaging import connect, ensure_stream
from shared.relay import POSITION_HEADER
from tests.support.history import history

BATCH = 20_000


async def publish(js: JetStreamContext, issues: int) -> int:
    streams = history(issues, seed=1, days=365)
    total = 0
    for spec in UPSTREAMS:
        await ensure_stream(js, spec)
        for n, message in enumerate(streams[spec.name], start=1):
            await js.publish_async(
                message.envelope.subject,
                message.envelope.to_bytes(),
                headers={
                    "Nats-Msg-Id": message.envelope.id,
                    POSITION_HEADER: str(message.position),
                },
            )
            if n % 20_000 == 0:
                await js.publish_async_completed()
        await js.publish_async_completed()
        total += len(streams[spec.name])
    return total


async def raw_loop(js: JetStreamContext, db: Path) -> int:
    """The floor: ordered consumer → json.loads → executemany, one transaction per batch."""
    connection = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute(
        "CREATE TABLE events (stream TEXT, sequence INTEGER, id TEXT, type TEXT, data TEXT,"
        " PRIMARY KEY (stream, sequence))"
    )
    applied = 0
    for spec in UPSTREAMS:
        last = (await js.stream_info(spec.name)).state.last_seq
        queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=4 * BATCH)
        subscription = await js.subscribe(
            f"{spec.service}.>",
            stream=spec.name,
            cb=queue.put,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=1),
        )
        position = 0
        while position < last:
            batch = [await queue.get()]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            position = batch[-1].metadata.sequence.stream
            await asyncio.to_thread(_store_raw, connection, spec.name, batch)
            applied += len(batch)
        await subscription.unsubscribe()
    connection.close()
    return applied


def _store_raw(connection: sqlite3.Connection, stream: str, batch: list[Msg]) -> None:
    rows = []
    for msg in batch:
        envelope = json.loads(msg.data)
        rows.append(
            (
                stream,
                msg.metadata.sequence.stream,
                envelope["id"],
                envelope["type"],
                json.dumps(envelope["data"]),
            )
        )
    connection.execute("BEGIN")
    connection.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
    connection.execute("COMMIT")


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the rebuild's worker process,
    reaped when the rebuild returns; not nats-server, which runs to the end)."""
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def measure(issues: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shangliang-rebuild-bench-") as folder:
        tmp = Path(folder)
        with EmbeddedNats(tmp / "nats") as server:
            nc = await connect(server.url, "bench")
            js = nc.jetstream()
            started = time.perf_counter()
            events = await publish(js, issues)
            print(f"published {events:,} events in {time.perf_counter() - started:.1f} s")
            results: dict[str, Any] = {"issues": issues, "events": events, "runs": []}
            for n in range(runs):
                run: dict[str, Any] = {"load_average": os.getloadavg()[0]}
                started, cpu = time.perf_counter(), cpu_seconds()
                assert await raw_loop(js, tmp / f"raw{n}.sqlite") == events
                run["raw_s"] = round(time.perf_counter() - started, 2)
                run["raw_cpu_s"] = round(cpu_seconds() - cpu, 2)
                (tmp / f"raw{n}.sqlite").unlink()
                (tmp / f"data{n}").mkdir()
                started, cpu = time.perf_counter(), cpu_seconds()
                rebuilt = await rebuild(js, tmp / f"data{n}", switch=False)
                run["rebuild_s"] = round(time.perf_counter() - started, 2)
                run["rebuild_cpu_s"] = round(cpu_seconds() - cpu, 2)
                rebuilt.unlink()
                for name in ("raw", "rebuild"):
                    run[f"{name}_events_per_s"] = round(events / run[f"{name}_s"])
                run["ratio"] = round(run["rebuild_events_per_s"] / run["raw_events_per_s"], 3)
                print(
                    f"run {n + 1}: raw {run['raw_events_per_s']:,} events/s ({run['raw_s']} s)"
                    f" · rebuild {run['rebuild_events_per_s']:,} events/s ({run['rebuild_s']} s)"
                    f" · ratio {run['ratio']:.0%} · load average {run['load_average']:.1f}"
                    f" · CPU s raw {run['raw_cpu_s']} rebuild {run['rebuild_cpu_s']}"
                )
                results["runs"].append(run)
            await nc.close()
    results["median_ratio"] = statistics.median(r["ratio"] for r in results["runs"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=45_000, help="issues in the history")
    parser.add_argument("--runs", type=int, default=1, help="measurements of each, alternately")
    args = parser.parse_args()
    results = asyncio.run(measure(args.issues, args.runs))
    print(json.dumps(results, indent=2))
    print(f"median ratio {results['median_ratio']:.0%} (target >= 80%)")


if __name__ == "__main__":
    main()
