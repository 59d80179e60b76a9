"""Read models (查询视图) that apply each upstream message exactly once: in SQLite (the
embedded default) or in PostgreSQL (to scale out), from the same SQL.

The views' SQL is written once, in SQLite's words; on PostgreSQL `PortableCursor` says the
same in PostgreSQL's and gives rows that, like `sqlite3.Row`, are tuples that can also be
read by column name. The translation is sqlglot's (`translate`), once per statement, with
the few rewrites it leaves to us (JSON functions on text, `json_each`, a difference of
`julianday`s, `CROSS JOIN … ON`); whatever it cannot say the same way is refused with the
statement. Every statement a module sends is declared (`sends_sql`), so a test translates
and runs each on PostgreSQL, and one nobody declared is refused.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlglot
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from psycopg import Connection, Cursor
from psycopg.sql import SQL, Identifier
from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import ErrorLevel, SqlglotError

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

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount


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


class UntranslatableSQL(ValueError):
    """A statement the dialect layer cannot say in PostgreSQL's words, or one it was never
    told about: raised with the statement, never sent as it is."""


StatementSource = Callable[[], Iterable[str]]
_SOURCES: list[StatementSource] = []


def sends_sql(source: StatementSource) -> StatementSource:
    """Declare, as a module-level function that yields them, every statement a module sends
    through `PortableCursor` (each variant its builders make). On PostgreSQL a statement
    nobody declared is refused (`postgres_sql`), and tests/integration/test_postgres_sql.py
    translates and runs every declared one: no statement reaches PostgreSQL untested."""
    _SOURCES.append(source)
    declared_sql.cache_clear()
    return source


@functools.cache
def declared_sql() -> frozenset[str]:
    """Every statement the imported modules declared with `sends_sql`."""
    return frozenset(statement for source in _SOURCES for statement in source())


@functools.cache
def postgres_sql(sql: str) -> str:
    """A declared statement of the views, in SQLite's words, as psycopg takes it for
    PostgreSQL: translated once per statement (a cache hit on every later call). Only
    declared statements are cached, so the cache holds at most `declared_sql()`."""
    if sql not in declared_sql():
        raise UntranslatableSQL(
            "undeclared statement (declare it with shared.views.sends_sql in the module that"
            f" sends it): {sql}"
        )
    return translate(sql)


class _SQLiteAsWritten(SQLite):
    """SQLite, except that an ORDER BY (or an index, or a conflict target) without NULLS
    FIRST/LAST is left to PostgreSQL's default. SQLite puts NULLs first, PostgreSQL last:
    the views never order by a column that holds NULL, and spelling SQLite's order out
    would keep PostgreSQL from reading an index backwards (and a conflict target takes no
    NULLS at all)."""

    NULL_ORDERING = "nulls_are_large"


_ALLOWED: frozenset[type[exp.Expression]] = frozenset(
    {
        # statements and their clauses
        exp.Select, exp.Union, exp.From, exp.Join, exp.Where, exp.Group, exp.Having,
        exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Subquery, exp.Exists, exp.Distinct,
        exp.Insert, exp.Values, exp.Tuple, exp.Schema, exp.OnConflict, exp.Update,
        exp.Delete, exp.Create, exp.ColumnDef, exp.ColumnConstraint, exp.PrimaryKey,
        exp.PrimaryKeyColumnConstraint, exp.NotNullColumnConstraint,
        exp.DefaultColumnConstraint, exp.Index, exp.IndexParameters,
        # names and values
        exp.Table, exp.TableAlias, exp.Alias, exp.Column, exp.Identifier, exp.Star,
        exp.Literal, exp.Null, exp.Boolean, exp.Placeholder, exp.Paren, exp.DataType,
        # operators
        exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.And, exp.Or, exp.Not,
        exp.In, exp.Is, exp.Like, exp.Escape, exp.DPipe, exp.Add, exp.Sub, exp.Mul,
        # functions that mean the same in both (GREATEST: SQLite's scalar MAX)
        exp.Count, exp.Sum, exp.Min, exp.Max, exp.Greatest, exp.Cast, exp.Substring,
        exp.Case, exp.If, exp.Coalesce, exp.GroupConcat,
        # rewritten below: json_extract, json_each
        exp.JSONExtractScalar, exp.JSONPath, exp.JSONPathRoot, exp.JSONPathKey,
        exp.Anonymous,
    }
)  # fmt: skip
"""What a statement may hold: each of these says the same in PostgreSQL as in SQLite (once
rewritten below), for the values the views hold. Anything else — GLOB, COLLATE NOCASE,
strftime, AUTOINCREMENT, `%`, a negative LIMIT … — is refused rather than passed on in words
PostgreSQL reads otherwise or not at all. Known differences the views stay clear of: LIKE
ignores ASCII case in SQLite only (the patterns are of lower-case keys and time stamps, or
casefolded titles matched against casefolded titles);
GREATEST skips NULLs where SQLite's MAX(a, b) gives NULL (its arguments are never NULL)."""

_STATEMENTS = (exp.Select, exp.Union, exp.Insert, exp.Update, exp.Delete, exp.Create)
_TYPES = frozenset({"TEXT", "INT", "BIGINT", "DOUBLE", "JSON", "DATE"})
_FUNCTIONS = frozenset({"json_array_elements_text"})
"""The functions sqlglot does not know that a statement may call once rewritten."""


def translate(sql: str, parameters: bool = True) -> str:
    """SQLite's SQL as the views write it, in PostgreSQL's words (sqlglot), or
    `UntranslatableSQL`. With `parameters`, for psycopg with parameters: `?` becomes `%s`,
    `:name` `%(name)s`, a literal `%` `%%`; without, placeholders are refused."""
    try:
        (tree,) = sqlglot.parse(sql, read=_SQLiteAsWritten)
    except (SqlglotError, ValueError) as error:
        raise UntranslatableSQL(f"{error}: {sql}") from error
    if not isinstance(tree, _STATEMENTS):
        raise UntranslatableSQL(f"not a statement sqlglot reads: {sql}")
    if isinstance(tree, exp.Insert) and tree.args.get("alternative"):
        raise UntranslatableSQL(
            f"INSERT OR {tree.args['alternative']}: say ON CONFLICT … instead: {sql}"
        )
    tree = tree.transform(_rewrite, sql=sql, copy=False)  # the tree is ours alone
    for node in tree.walk():
        if type(node) not in _ALLOWED and not _conflict_action(node):
            raise UntranslatableSQL(f"{type(node).__name__} ({node.sql()}) in: {sql}")
        if isinstance(node, exp.Anonymous) and node.name.lower() not in _FUNCTIONS:
            raise UntranslatableSQL(f"function {node.name} in: {sql}")
        if isinstance(node, exp.DataType) and node.this.name not in _TYPES:
            raise UntranslatableSQL(f"type {node.sql()} in: {sql}")
    marks = list(tree.find_all(exp.Placeholder))
    if marks and not parameters:
        raise UntranslatableSQL(f"parameters in: {sql}")
    names = [mark.args.get("this") for mark in marks]
    if len({name is None for name in names}) > 1:
        raise UntranslatableSQL(f"both ? and :name in: {sql}")
    if "\x00" in sql:
        raise UntranslatableSQL(f"a NUL character in: {sql}")
    taken = []
    for i, (mark, name) in enumerate(zip(marks, names, strict=True)):
        # stand-ins that no `%` escaping can touch
        taken.append("%s" if name is None else f"%({name})s")
        mark.replace(exp.Var(this=f"\x00{i}\x00"))
    try:
        text = tree.sql(dialect="postgres", copy=False, unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as error:
        raise UntranslatableSQL(f"{error}: {sql}") from error
    if not parameters:
        return text
    text = text.replace("%", "%%")
    return re.sub(r"\x00(\d+)\x00", lambda m: taken[int(m.group(1))], text)


def _rewrite(node: exp.Expression, sql: str) -> exp.Expression:
    """What sqlglot leaves in SQLite's words, in PostgreSQL's."""
    if isinstance(node, exp.Join) and node.args.get("kind") == "CROSS" and node.args.get("on"):
        # SQLite's `CROSS JOIN … ON` only fixes the join order; PostgreSQL plans on its own.
        node.set("kind", None)
    elif isinstance(node, exp.JSONExtractScalar):
        # The views keep JSON as text: PostgreSQL reads it as json first.
        target = node.this
        if not (isinstance(target, exp.Cast) and target.to.is_type("json")):
            node.set("this", exp.cast(target, "json"))
    elif isinstance(node, exp.Table) and _called(node.this, "json_each"):
        # `SELECT value FROM json_each(?)`: the elements of a JSON array, as text.
        (array,) = node.this.expressions
        alias = node.args.get("alias")
        name = alias.name if alias else "value"
        return exp.Table(
            this=exp.Anonymous(
                this="json_array_elements_text", expressions=[exp.cast(array, "json")]
            ),
            alias=exp.TableAlias(
                this=exp.to_identifier(name),
                columns=[exp.to_identifier("value")] if name != "value" else None,
            ),
        )
    elif isinstance(node, exp.Sub) and _called(node.this, "julianday"):
        # julianday(a) - julianday(b) of two days (`substr(…, 1, 10)`): a date minus a
        # date is PostgreSQL's count of days. Any other julianday is refused below.
        days = [_day(side, sql) for side in (node.this, node.expression)]
        return exp.Sub(this=exp.cast(days[0], "date"), expression=exp.cast(days[1], "date"))
    return node


def _conflict_action(node: exp.Expression) -> bool:
    """`DO NOTHING` / `DO UPDATE` of an ON CONFLICT clause (a keyword sqlglot keeps as is)."""
    return (
        isinstance(node, exp.Var)
        and isinstance(node.parent, exp.OnConflict)
        and node.arg_key == "action"
        and node.name in ("DO NOTHING", "DO UPDATE")
    )


def _called(node: exp.Expression, name: str) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.lower() == name


def _day(node: exp.Expression, sql: str) -> exp.Expression:
    """The argument of `julianday(substr(x, 1, 10))`: the day `x` begins with."""
    if _called(node, "julianday") and len(node.expressions) == 1:
        (day,) = node.expressions
        if (
            isinstance(day, exp.Substring)
            and day.args.get("start") == exp.Literal.number(1)
            and day.args.get("length") == exp.Literal.number(10)
        ):
            return day
    raise UntranslatableSQL(f"julianday other than of a day's difference in: {sql}")


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
