"""Read models (查询视图) that apply each upstream message exactly once: in SQLite (the
embedded default) or in PostgreSQL (to scale out), from the same SQL.

The views' SQL is written once, in SQLite's words; on PostgreSQL `PortableCursor` says the
same in PostgreSQL's (placeholders, JSON functions, `group_concat`) and gives rows that, like
`sqlite3.Row`, are tuples that can also be read by column name.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from psycopg import Connection, Cursor
from psycopg.sql import SQL, Identifier

from shared.consumer import Delivered


class SQLiteView(SQLiteTrackingRecorder):
    """Applies batches of one upstream stream together with the tracking record.

    The position is read inside the same transaction, so messages that another consumer
    of this view already applied are skipped: the single-row tracking record alone would
    accept a batch that overlaps the last one, as long as it ends further on.
    """

    pragmas: tuple[str, ...] = ()
    """Settings of the writing connection, made outside the transaction (SQLite wants that)."""

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        with self.datastore.get_connection(commit=True) as connection:
            with connection.cursor() as settings:
                for pragma in self.pragmas:
                    settings.execute(pragma)
            with connection.transaction(commit=True) as c:
                done = self._max_tracking_id(tracking.application_name, c) or 0
                for message in messages:
                    if message.position > done:
                        self.apply_message(c, tracking.application_name, message)
                self.end_batch(c)
                self._insert_tracking(c, tracking)

    def read(self) -> Any:
        """A read-only transaction (a consistent snapshot of the whole view)."""
        return self.datastore.transaction(commit=False)

    def apply_message(self, c: Any, stream: str, message: Delivered) -> None:
        raise NotImplementedError

    def end_batch(self, c: Any) -> None:
        """After the batch's messages, in the same transaction: for views that write in bulk."""


class PostgresView(PostgresTrackingRecorder):
    """`SQLiteView` on PostgreSQL: the view's tables and tracking in one schema.

    A batch takes a transaction-scoped advisory lock on the view before it reads anything,
    so batches take turns as SQLite's single writer makes them: a batch of one stream sees
    what a batch of another stream did to the same entity (reading committed rows alone, two
    at once would each derive the entity without the other's facts), and of two replicas
    applying the same stream the second sees the first one's position and skips what it
    applied. A batch that still overlaps (its tracking record is not beyond the stored one)
    is refused with `IntegrityError`.
    """

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, tracking_table_name="tracking", **kwargs)
        self.sql_create_statements.extend(SQL(s) for s in self.view_table_statements())  # type: ignore[arg-type]

    def view_table_statements(self) -> list[str]:
        """The view's own tables and indexes, in PostgreSQL's words."""
        return []

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))",
                (f"shangliang view {self.datastore.schema}",),
            )
            c = PortableCursor(curs)
            done = self._max_tracking_id(tracking.application_name, curs) or 0
            for message in messages:
                if message.position > done:
                    self.apply_message(c, tracking.application_name, message)
            self.end_batch(c)
            self._insert_tracking(curs, tracking)

    @contextlib.contextmanager
    def read(self) -> Iterator[PortableCursor]:
        """A read-only transaction (a consistent snapshot of the whole view)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield PortableCursor(curs)

    def _max_tracking_id(self, application_name: str, curs: Any) -> int | None:
        if isinstance(curs, PortableCursor):
            curs = curs.cursor
        return super()._max_tracking_id(application_name, curs)

    def apply_message(self, c: Any, stream: str, message: Delivered) -> None:
        raise NotImplementedError

    def end_batch(self, c: Any) -> None:
        """After the batch's messages, in the same transaction: for views that write in bulk."""


class ViewDatastore(PostgresDatastore):
    """A datastore whose connections look up unqualified names in the view's schema."""

    def after_connect_func(self) -> Callable[[Connection[Any]], None]:
        configure = super().after_connect_func()
        search_path = SQL("SET search_path TO {0}").format(Identifier(self.schema))

        def after_connect(connection: Connection[Any]) -> None:
            configure(connection)
            connection.execute(search_path)

        return after_connect


class PortableCursor:
    """A psycopg cursor that takes SQL written for SQLite and gives `sqlite3.Row`-like rows."""

    def __init__(self, cursor: Cursor[Any]) -> None:
        self.cursor = cursor
        cursor.row_factory = _rows  # type: ignore[assignment]

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> PortableCursor:
        self.cursor.execute(postgres_sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self.cursor.executemany(postgres_sql(sql), rows)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self.cursor.fetchall()


def _rows(cursor: Cursor[Any]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    names = tuple(column.name for column in cursor.description or ())
    index = {name: i for i, name in enumerate(names)}

    class Row(tuple[Any, ...]):
        """A row as `sqlite3.Row` gives it: by position, by name, `dict(row)`."""

        def __getitem__(self, key: Any) -> Any:
            return super().__getitem__(index[key] if isinstance(key, str) else key)

        def keys(self) -> tuple[str, ...]:
            return names

    return Row


_LITERALS = re.compile(r"('(?:[^']|'')*')")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_JSON_EXTRACT = re.compile(r"json_extract\(([\w.]+), '\$\.(\w+)'\)")
_JSON_EACH = re.compile(r"json_each\((\?|:\w+)\)")
_GROUP_CONCAT = re.compile(r"group_concat\(([\w.]+)\)")
# SQLite's planner hints: `CROSS JOIN … ON` fixes the join order, a unary `+` before a
# column keeps an index from being used; PostgreSQL plans on its own and knows neither.
_CROSS_JOIN = re.compile(r"\bCROSS JOIN (\w+ \w+) ON\b")
_UNARY_PLUS = re.compile(r"(?<=\s)\+(?=\w+\.\w)")
_JULIANDAY = re.compile(r"julianday\((substr\([\w.]+, 1, 10\))\)")
_MAX_OF_TWO = re.compile(r"\bMAX\(0, ")


@functools.lru_cache(maxsize=512)
def postgres_sql(sql: str) -> str:
    """SQLite's SQL as the views write it, in PostgreSQL's words."""
    sql = _JSON_EXTRACT.sub(r"(CAST(\1 AS json) ->> '\2')", sql)
    sql = _JSON_EACH.sub(r"json_array_elements_text(CAST(\1 AS json)) AS value", sql)
    sql = _GROUP_CONCAT.sub(r"string_agg(\1, ',')", sql)
    sql = _CROSS_JOIN.sub(r"JOIN \1 ON", sql)
    sql = _UNARY_PLUS.sub("", sql)
    sql = _JULIANDAY.sub(r"CAST(\1 AS date)", sql)  # a date minus a date: days
    sql = _MAX_OF_TWO.sub("GREATEST(0, ", sql)
    parts = _LITERALS.split(sql.replace("%", "%%"))
    for i in range(0, len(parts), 2):  # outside the string literals
        parts[i] = _NAMED.sub(r"%(\1)s", parts[i].replace("?", "%s"))
    return "".join(parts)


def view_datastore(env: dict[str, str]) -> ViewDatastore:
    """The view's datastore, from the eventsourcing environment of a PostgreSQL event store."""
    return ViewDatastore(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        pool_size=int(env.get("POSTGRES_POOL_SIZE", "5")),
        max_overflow=10,
        lock_timeout=int(env.get("POSTGRES_LOCK_TIMEOUT", "10")),
        schema=env["POSTGRES_SCHEMA"],
    )
