"""The rebuild's bulk load (批量重建): a fresh private file filled without the live path's cycle.

The live view, for every batch, loads the known facts of each touched entity, derives it
before and after, and upserts rows and counter differences: right for a file that is read
while it is written, wasteful for a file nobody reads until it is complete. A rebuild's
file is private (nothing points to it before it is whole), so the load

- keeps the facts of every entity in memory, appends each new one to `facts` as its batch
  arrives (without the secondary index, which is built once at the end),
- derives every entity once, at the end, from all its facts: with the same functions as the
  live path (derive.py), so the rows are the same row for row,
- sums the counters in Python and writes each (office, year, figure) once,
- writes with the journal and fsync off, then switches the file to WAL, records the
  tracking positions and fsyncs it before it is handed over.

A load that fails leaves a file nobody points to: a half-written file is never used.
"""

from __future__ import annotations

import contextlib
import operator
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Tracking

from services.projections.derive import DERIVE
from services.projections.facts import Fact, facts_of
from services.projections.views import (
    FACT_COLUMNS,
    LINK_TABLES,
    ROW_TABLES,
    ProjectionView,
    fact_row,
    marks,
    open_projection_view,
)
from shared.consumer import Delivered

FACT_KEY = operator.itemgetter(0, 1, 2)
"""The primary key of a fact's row: entity, entity_id, event_id."""
Counts = dict[tuple[str, int, str], int]
Days = dict[tuple[str, int, int], int]
CACHE_KIB = 1_048_576
"""The load's page cache (1 GiB at most, used as the file grows)."""


class BulkLoad:
    """Loads one rebuild's file: `add` each stream's batches in order, then `finish`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        view = open_projection_view(str(path))  # the tables, as the live view has them
        self.indexes = _index_statements(view)
        view.datastore.close()
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # The file is private until it is complete: no rollback journal, no fsync per batch.
        self.connection.execute("PRAGMA journal_mode = OFF")
        self.connection.execute("PRAGMA synchronous = OFF")
        # Facts arrive in no order of their key: with SQLite's default 2 MB of cache, inserting
        # them reads the same pages again and again once the table outgrows it.
        self.connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        for name in _index_names(self.connection):
            self.connection.execute(f"DROP INDEX {name}")
        self.facts: dict[str, dict[str, dict[str, Fact]]] = defaultdict(dict)
        """entity → entity_id → event_id → the fact."""
        self.positions: dict[str, int] = {}
        # SQLite inserts and indexes without the GIL: in a thread of its own it writes one
        # batch while this thread decodes the next.
        self.writer = ThreadPoolExecutor(1)
        self.written: Future[None] | None = None

    def add(self, stream: str, messages: Iterable[Delivered], last: int) -> None:
        """Keep and append the facts of messages after this stream's position so far."""
        self.add_facts(stream, facts_after(stream, messages, self.positions.get(stream, 0)), last)

    def add_facts(self, stream: str, new: Iterable[Fact], last: int) -> None:
        """Keep and append facts of a stream's messages up to `last` (from `facts_after`)."""
        if last <= self.positions.get(stream, 0):
            return
        rows = []
        facts = self.facts
        for fact in new:
            of_kind = facts[fact.entity]
            of_entity = of_kind.get(fact.entity_id)
            if of_entity is None:
                of_entity = of_kind[fact.entity_id] = {}
            elif fact.event_id in of_entity:
                continue  # re-published: the first is kept, as the live view keeps it
            of_entity[fact.event_id] = fact
            rows.append(fact_row(fact))
        self.positions[stream] = last
        self._wait_for_writer()
        self.written = self.writer.submit(self._insert_facts, rows)

    def _insert_facts(self, rows: list[tuple[Any, ...]]) -> None:
        rows.sort(key=FACT_KEY)  # nearby keys share pages: fewer page visits per batch
        with self.transaction() as c:
            c.executemany(f"INSERT INTO facts ({FACT_COLUMNS}) VALUES ({marks(11)})", rows)

    def _wait_for_writer(self) -> None:
        if self.written is not None:
            self.written.result()  # in order, and a failed write fails the load

    def finish(self, streams: Iterable[str]) -> None:
        """Derive every entity, write rows, links, counters and indexes; hand over the file."""
        # The writer thread indexes the facts, then writes and indexes each kind's rows,
        # while this one derives the next kind (the largest first).
        self._wait_for_writer()
        self.written = self.writer.submit(self._create_indexes, "facts")
        counts: Counts = defaultdict(int)
        days: Days = defaultdict(int)
        for entity, of_kind in sorted(self.facts.items(), key=lambda kind: -len(kind[1])):
            rows, links = self._derive_kind(entity, of_kind, counts, days)
            self._wait_for_writer()
            self.written = self.writer.submit(self._insert_rows, entity, rows, links)
        self._wait_for_writer()
        self.writer.shutdown()
        with self.transaction() as c:
            # A counter at zero has no row, as in the live view.
            c.executemany(
                "INSERT INTO figures (office, year, figure, n) VALUES (?, ?, ?, ?)",
                [(*k, n) for k, n in counts.items() if n],
            )
            c.executemany(
                "INSERT INTO resolution_days (office, year, days, n) VALUES (?, ?, ?, ?)",
                [(*k, n) for k, n in days.items() if n],
            )
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.close()
        view = open_projection_view(str(self.path))
        try:
            for stream in streams:
                if self.positions.get(stream):
                    view.insert_tracking(Tracking(stream, self.positions[stream]))
        finally:
            view.datastore.close()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _derive_kind(
        entity: str, of_kind: dict[str, dict[str, Fact]], counts: Counts, days: Days
    ) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
        """Every entity of one kind: its row and links; its counters added to the sums."""
        rows = []
        links: list[tuple[str, str]] = []
        derive = DERIVE[entity]
        linked = entity in LINK_TABLES
        for entity_id, of_entity in of_kind.items():
            derived = derive(of_entity.values())
            for ckey, n in derived.counts.items():
                counts[ckey] += n
            for dkey, n in derived.days.items():
                days[dkey] += n
            if derived.row is None:
                continue
            rows.append(tuple(derived.row.values()))
            if linked:
                links.extend((entity_id, link) for link in derived.links)
        return rows, links

    def _insert_rows(
        self, entity: str, rows: list[tuple[Any, ...]], links: list[tuple[str, str]]
    ) -> None:
        with self.transaction() as c:
            table, _, columns = ROW_TABLES[entity]
            c.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(len(columns))})",
                rows,
            )
            if links:
                table, key, other = LINK_TABLES[entity]
                c.executemany(
                    f"INSERT OR IGNORE INTO {table} ({key}, {other}) VALUES (?, ?)", links
                )
        for table in _tables_of(entity):
            self._create_indexes(table)

    def _create_indexes(self, table: str) -> None:
        with self.transaction() as c:
            for statement in self.indexes.get(table, []):
                c.execute(statement)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.connection.execute("BEGIN")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")


def facts_after(stream: str, messages: Iterable[Delivered], done: int) -> list[Fact]:
    """The facts of the messages after store position `done`: as the live view, a store
    position is applied once."""
    found = []
    for message in messages:
        if message.position > done:
            done = message.position
            found.extend(facts_of(stream, message))
    return found


def _tables_of(entity: str) -> list[str]:
    """The tables an entity kind's rows and links go to."""
    return [ROW_TABLES[entity][0], *([LINK_TABLES[entity][0]] if entity in LINK_TABLES else [])]


def _index_statements(view: ProjectionView) -> dict[str, list[str]]:
    """The view's CREATE INDEX statements by the table they index."""
    by_table: dict[str, list[str]] = defaultdict(list)
    for statement in view.construct_create_table_statements():
        if statement.startswith("CREATE INDEX"):
            by_table[statement.split(" ON ")[1].split()[0]].append(statement)
    return by_table


def _index_names(connection: sqlite3.Connection) -> list[str]:
    return [
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    ]
