"""Statistics as of a past day (历史口径统计): the SQL count beside the entity-by-entity recount.

A generated history (`--issues` issues over a year, with their activities, meetings and
cases) is loaded into a view file in bulk, then `GET /statistics/{year}?as_of=` 's counting
is timed both ways for a few days of the year, in the same run, and the answers compared:

- `counted_as_of` (what the API answers with): SQL over the facts' indexes;
- `recount`: every relevant entity's facts read and derived in Python (the reference).

    python -m bench.as_of_bench --issues 100000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date
from pathlib import Path

from services.projections.bulk import BulkLoad
from services.projections.queries import counted_as_of, fact_day_end, recount
from services.projections.views import open_projection_view
from tests.support.history import history

DAYS = (date(2021, 3, 31), date(2021, 6, 30), date(2021, 12, 31))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shangliang-as-of-bench-") as folder:
        path = Path(folder) / "view.sqlite"
        started = time.perf_counter()
        streams = history(args.issues, seed=1, days=365)
        load = BulkLoad(path)
        for stream, messages in streams.items():
            load.add(stream, messages, messages[-1].sequence)
        load.finish(list(streams))
        print(f"loaded {args.issues:,} issues in {time.perf_counter() - started:.1f} s")
        view = open_projection_view(str(path))
        try:
            for day in DAYS:
                until = fact_day_end(day)
                timings = {}
                answers = {}
                for name, count in (("sql", counted_as_of), ("recount", recount)):
                    started = time.perf_counter()
                    answers[name] = count(view, 2021, until)
                    timings[name] = time.perf_counter() - started
                assert answers["sql"] == answers["recount"], day
                collected = answers["sql"][0].get(("*", "issues_collected"), 0)
                print(
                    f"as of {day}: {collected:,} issues collected ·"
                    f" SQL {timings['sql'] * 1000:.0f} ms · recount {timings['recount']:.2f} s"
                    f" · load average {os.getloadavg()[0]:.1f}"
                )
        finally:
            view.datastore.close()


if __name__ == "__main__":
    main()
