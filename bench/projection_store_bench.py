"""The live view's apply rate (视图写入速度) in SQLite and in PostgreSQL, the same history.

A generated history of N issues (with their meetings, cases and activities) is applied
through `ProjectionView.apply` in batches of B messages per stream, as the live consumers
apply it: each batch with its tracking record in one transaction. The PostgreSQL view is
in a schema of its own, dropped afterwards.

    python -m bench.projection_store_bench --issues 5000 --batch 500 \\
        --postgres host=127.0.0.1,user=postgres,dbname=test
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from eventsourcing.persistence import Tracking

from services.projections.views import ProjectionView, open_postgres_view, open_projection_view
from shared.consumer import Delivered
from tests.support.history import batches, history


def load(view: ProjectionView, streams: dict[str, list[Delivered]], size: int) -> float:
    started = time.perf_counter()
    for stream, messages in streams.items():
        for part in batches(messages, size):
            view.apply(part, Tracking(stream, part[-1].position))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--issues", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--postgres", default="host=127.0.0.1,user=postgres,dbname=test")
    args = parser.parse_args()
    streams = history(args.issues, seed=1)
    total = sum(len(m) for m in streams.values())
    connect = dict(item.split("=", 1) for item in args.postgres.split(","))
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as folder:
        lite = open_projection_view(str(Path(folder) / "projections.sqlite"))
        seconds = load(lite, streams, args.batch)
        lite.datastore.close()
        print(f"sqlite:   {total:,} messages in {seconds:.2f} s, {total / seconds:,.0f}/s")
    with psycopg.connect(**connect, autocommit=True) as admin:  # type: ignore[arg-type]
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            env = {
                "POSTGRES_DBNAME": connect["dbname"],
                "POSTGRES_HOST": connect["host"],
                "POSTGRES_PORT": connect.get("port", "5432"),
                "POSTGRES_USER": connect["user"],
                "POSTGRES_PASSWORD": connect.get("password", ""),
                "POSTGRES_SCHEMA": schema,
            }
            pg = open_postgres_view(env)
            seconds = load(pg, streams, args.batch)
            pg.datastore.close()
            print(f"postgres: {total:,} messages in {seconds:.2f} s, {total / seconds:,.0f}/s")
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
