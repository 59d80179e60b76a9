"""A rebuild's bulk load ends in the state the live view reaches, row for row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.statistics_history import STREAMS, history
from services.projections.bulk import BulkLoad
from services.projections.rebuild import Payloads, apply_payloads, decoded
from services.projections.views import open_projection_view


def payloads_with_surprises() -> dict[str, Payloads]:
    """A generated history as bytes, with a re-published event and an undecodable message."""
    streams = {
        stream: [(m.sequence, m.envelope.to_bytes()) for m in messages]
        for stream, messages in history(200, seed=21).items()
    }
    intake, meetings = streams["INTAKE"], streams["MEETINGS"]
    intake.append((len(intake) + 1, intake[3][1]))  # the same event id, published again
    meetings.append((len(meetings) + 1, b'{"id": "not an envelope"}'))  # last of its stream
    return streams


def in_batches(payloads: Payloads, size: int) -> list[Payloads]:
    return [payloads[i : i + size] for i in range(0, len(payloads), size)]


def index_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {row[0] for row in rows}


def test_a_bulk_load_equals_the_live_view_with_its_positions_and_indexes(tmp_path: Path) -> None:
    streams = payloads_with_surprises()
    live = open_projection_view(str(tmp_path / "live.sqlite"))
    for stream in STREAMS:
        for batch in in_batches(streams[stream], 37):
            apply_payloads(live, stream, batch, batch[-1][0])

    load = BulkLoad(tmp_path / "bulk.sqlite")
    for stream in STREAMS:
        for batch in in_batches(streams[stream], 500):
            load.add(stream, decoded(batch), batch[-1][0])
        load.add(stream, decoded(streams[stream][-5:]), streams[stream][-1][0])  # seen: no-op
    load.finish(STREAMS)

    bulk = open_projection_view(str(tmp_path / "bulk.sqlite"))
    try:
        rows = live.dump()
        assert len(rows["issue_status"]) == 200
        assert bulk.dump() == rows
        for stream in STREAMS:
            assert (
                bulk.max_tracking_id(stream) == live.max_tracking_id(stream) == len(streams[stream])
            )
        with bulk.read() as c:
            c.execute("PRAGMA journal_mode")
            assert c.fetchone()[0] == "wal"
    finally:
        bulk.datastore.close()
        live.datastore.close()
    assert index_names(tmp_path / "bulk.sqlite") == index_names(tmp_path / "live.sqlite")
