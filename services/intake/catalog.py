"""Intake's lists (目录): one row per issue and activity, in the event store's own database.

The event store finds an aggregate by id only. Lists filter by office, status, category,
community and dates, so the catalog keeps what they filter and order by in a table beside
the events (the same SQLite file, or the same PostgreSQL schema), kept up to date from the
notification log. A list reads one page of ids from it and loads only those aggregates: the
aggregates themselves, all in memory, took 1.7 KB an issue (1.7 GB at a million).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Identifier

from services.intake.activity import OutreachActivity
from services.intake.domain import Issue
from shared.clock import china_day
from shared.eventstore import ServiceApplication
from shared.views import PortableCursor, sends_sql

TABLE = "intake_catalog"
COLUMNS = (
    "id",
    "kind",
    "version",
    "office",
    "at",
    "day",
    "status",
    "category",
    "community",
    "liaison_station",
    "source",
    "key_problem",
    "folded_title",
    "tracking_code",
    "awaiting_callback_since",
)
CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, kind TEXT NOT NULL, version"
    " BIGINT NOT NULL, office TEXT NOT NULL, at TEXT NOT NULL, day TEXT NOT NULL, status TEXT,"
    " category TEXT, community TEXT, liaison_station TEXT, source TEXT, key_problem INT,"
    " folded_title TEXT, tracking_code TEXT, awaiting_callback_since TEXT)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_by_time ON {TABLE} (kind, at, id)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_by_office ON {TABLE} (kind, office, at, id)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_by_code ON {TABLE} (tracking_code)",
    "CREATE TABLE IF NOT EXISTS intake_catalog_cases (case_id TEXT NOT NULL, issue_id TEXT NOT"
    " NULL, PRIMARY KEY (case_id, issue_id))",
    "CREATE TABLE IF NOT EXISTS intake_catalog_position (name TEXT PRIMARY KEY, position BIGINT"
    " NOT NULL)",
    "INSERT INTO intake_catalog_position (name, position) VALUES ('intake', 0)"
    " ON CONFLICT (name) DO NOTHING",
)
POSITION = "SELECT position FROM intake_catalog_position WHERE name = 'intake'"
ADVANCE = "UPDATE intake_catalog_position SET position = ? WHERE name = 'intake' AND position < ?"
# A version already applied (by this process or another replica) changes nothing.
UPSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
    + f" WHERE {TABLE}.version < excluded.version"
)
NOTE_CASE = (
    "INSERT INTO intake_catalog_cases (case_id, issue_id) VALUES (?, ?)"
    " ON CONFLICT (case_id, issue_id) DO NOTHING"
)
ISSUES_OF_CASE = "SELECT issue_id FROM intake_catalog_cases WHERE case_id = ? ORDER BY issue_id"
WITH_CODE = f"SELECT id FROM {TABLE} WHERE kind = 'issue' AND tracking_code = ?"
KNOWN = f"SELECT id FROM {TABLE} WHERE id IN (SELECT value FROM json_each(?))"


def moment(at: datetime) -> str:
    """A moment as the table keeps it: UTC, fixed width, so text order is time order."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    page_size: int


def _in(column: str, values: Iterable[str] | None, params: dict[str, Any], name: str) -> str:
    if values is None:
        return ""
    params[name] = json.dumps(sorted(values), ensure_ascii=False)
    return f" AND {column} IN (SELECT value FROM json_each(:{name}))"


def _days(day_from: date | None, day_to: date | None, params: dict[str, Any]) -> str:
    sql = ""
    if day_from is not None:
        sql += " AND day >= :date_from"
        params["date_from"] = day_from.isoformat()
    if day_to is not None:
        sql += " AND day <= :date_to"
        params["date_to"] = day_to.isoformat()
    return sql


def _community(community: str | None, params: dict[str, Any]) -> str:
    if community is None:
        return ""
    params["community"] = community
    return " AND (community = :community OR liaison_station = :community)"


@dataclass(frozen=True)
class IssueFilter:
    """What `GET /issues` filters by; None means any. Days are China's (`china_day`)."""

    offices: frozenset[str] | None = None
    status: str | None = None
    category: str | None = None
    community: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    key_problem: bool | None = None
    title_holds: str | None = None

    def where(self, params: dict[str, Any]) -> str:
        sql = "kind = 'issue'" + _in("office", self.offices, params, "offices")
        for column in ("status", "category"):
            if (value := getattr(self, column)) is not None:
                sql += f" AND {column} = :{column}"
                params[column] = value
        sql += _community(self.community, params) + _days(self.date_from, self.date_to, params)
        if self.key_problem is not None:
            sql += " AND key_problem = :key_problem"
            params["key_problem"] = int(self.key_problem)
        if self.title_holds is not None:
            # Both sides casefolded, so LIKE's case rules (ASCII only, SQLite only) never apply.
            held = self.title_holds.casefold()
            params["title"] = "%" + "".join("\\" + c if c in "%_\\" else c for c in held) + "%"
            sql += " AND folded_title LIKE :title ESCAPE '\\'"
        return sql


@dataclass(frozen=True)
class ActivityFilter:
    """What `GET /activities` filters by; None means any. Days are China's (`china_day`)."""

    offices: frozenset[str] | None = None
    community: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def where(self, params: dict[str, Any]) -> str:
        sql = "kind = 'activity'" + _in("office", self.offices, params, "offices")
        return (
            sql + _community(self.community, params) + _days(self.date_from, self.date_to, params)
        )


@dataclass(frozen=True)
class RequestFilter:
    """Open311's request search: an office's online issues submitted in [start, end]."""

    start: datetime
    end: datetime
    office: str | None = None
    categories: Sequence[str] | None = None
    statuses: frozenset[str] | None = None

    def where(self, params: dict[str, Any]) -> str:
        params.update(start=moment(self.start), end=moment(self.end))
        sql = "kind = 'issue' AND source = 'online' AND at >= :start AND at <= :end"
        if self.office is not None:
            sql += " AND office = :office"
            params["office"] = self.office
        sql += _in("category", self.categories, params, "categories")
        return sql + _in("status", self.statuses, params, "statuses")


@dataclass(frozen=True)
class CallbackFilter:
    """Resolved issues not called back since, resolved at or before `resolved_before`."""

    resolved_before: datetime
    offices: frozenset[str] | None = None

    def where(self, params: dict[str, Any]) -> str:
        params["resolved_before"] = moment(self.resolved_before)
        sql = "kind = 'issue' AND awaiting_callback_since <= :resolved_before"
        return sql + _in("office", self.offices, params, "offices")


Filter = IssueFilter | ActivityFilter | RequestFilter | CallbackFilter
NEWEST_FIRST = "ORDER BY at DESC, id DESC"
OLDEST_CALL_FIRST = "ORDER BY awaiting_callback_since, id"


def page_sql(where: Filter) -> tuple[str, str, dict[str, Any]]:
    """The count and the page (`:limit`, `:offset`) of the rows that match, newest first."""
    params: dict[str, Any] = {}
    condition = f" FROM {TABLE} WHERE {where.where(params)}"
    page = f"SELECT id{condition} {NEWEST_FIRST} LIMIT :limit OFFSET :offset"
    return f"SELECT COUNT(*){condition}", page, params


def all_sql(where: Filter) -> tuple[str, dict[str, Any]]:
    """Every row that matches, in the order its list gives."""
    params: dict[str, Any] = {}
    order = OLDEST_CALL_FIRST if isinstance(where, CallbackFilter) else NEWEST_FIRST
    return f"SELECT id FROM {TABLE} WHERE {where.where(params)} {order}", params


def _shapes(kind: type[Filter], **required: Any) -> Iterator[Filter]:
    """One filter of each shape: the statement depends on which fields are given only."""
    optional = [f.name for f in dataclasses.fields(kind) if f.name not in required]
    for n in range(len(optional) + 1):
        for given in itertools.combinations(optional, n):
            sample = {name: _sample(kind, name) for name in given}
            yield kind(**required, **sample)


def _sample(kind: type[Filter], name: str) -> Any:
    field = {f.name: f for f in dataclasses.fields(kind)}[name]
    samples = {"offices": frozenset({"x"}), "categories": ["x"], "statuses": frozenset({"x"})}
    if name in samples:
        return samples[name]
    return {"date | None": date(2020, 1, 1), "bool | None": True}.get(str(field.type), "x")


@sends_sql
def _statements() -> Iterator[str]:
    yield from (*CREATE, POSITION, ADVANCE, UPSERT, NOTE_CASE, ISSUES_OF_CASE, WITH_CODE, KNOWN)
    for kind in (IssueFilter, ActivityFilter):
        for where in _shapes(kind):
            yield from page_sql(where)[:2]
    now = datetime(2020, 1, 1, tzinfo=UTC)
    for where in (
        *_shapes(RequestFilter, start=now, end=now),
        *_shapes(CallbackFilter, resolved_before=now),
    ):
        yield all_sql(where)[0]


def row_of(aggregate: Aggregate, code_of: Callable[[UUID], str]) -> tuple[Any, ...] | None:
    """What the lists need of an issue or an activity; None for anything else (keys)."""
    if isinstance(aggregate, Issue):
        # Due for a call back from its resolution on, until someone calls after it.
        far = datetime.max.replace(tzinfo=UTC)
        awaiting = aggregate.resolved_at if aggregate.due_for_callback(far) else None
        return (
            *_common(aggregate, "issue", aggregate.submitted_at),
            aggregate.status,
            aggregate.category,
            aggregate.community,
            aggregate.liaison_station,
            aggregate.source,
            int(aggregate.key_problem),
            aggregate.title.casefold(),
            code_of(aggregate.id),
            None if awaiting is None else moment(awaiting),
        )
    if isinstance(aggregate, OutreachActivity):
        return (
            *_common(aggregate, "activity", aggregate.held_at),
            None,
            None,
            aggregate.community,
            aggregate.liaison_station,
            *(None,) * 5,
        )
    return None


def _common(aggregate: Aggregate, kind: str, at: datetime) -> tuple[Any, ...]:
    office = aggregate.office  # type: ignore[attr-defined]
    return (
        str(aggregate.id),
        kind,
        aggregate.version,
        office,
        moment(at),
        china_day(at).isoformat(),
    )


class Catalog:
    """目录: the rows the lists select from, kept up to date from the notification log."""

    page_read = 2000
    """Notifications applied per transaction: a batch's aggregates are what a catch-up holds
    at once (in one process with 30,000 issues: +38 MB at 5,000, +16 MB at 2,000, +9 MB at
    1,000 but a third slower, a commit per batch)."""

    def __init__(self, application: ServiceApplication, code_of: Callable[[UUID], str]) -> None:
        self._app = application
        self._code_of = code_of
        datastore = getattr(application.recorder, "datastore", None)
        # In memory (the unit tests), an in-memory SQLite of its own: the same statements.
        self._datastore: Any = datastore or SQLiteDatastore(
            f"file:intake-catalog-{uuid.uuid4()}?mode=memory&cache=shared"
        )
        self._postgres = not isinstance(self._datastore, SQLiteDatastore)
        self._lock = threading.Lock()
        with self._cursor(commit=True) as c:
            for statement in CREATE:
                c.execute(statement)

    @contextlib.contextmanager
    def _cursor(self, commit: bool) -> Iterator[Any]:
        with self._datastore.transaction(commit=commit) as curs:
            if not self._postgres:
                yield curs
                return
            # The event store's connections name its tables with their schema; ours do not.
            schema = Identifier(self._datastore.schema)
            curs.execute(SQL("SET LOCAL search_path TO {0}").format(schema))
            yield PortableCursor(curs)

    def catch_up(self) -> None:
        """Apply whatever was stored since the last call (cheap when nothing was)."""
        while self.catch_up_batch():
            pass

    def catch_up_batch(self) -> bool:
        """Apply the next batch of what was stored; False when there was nothing to apply."""
        with self._lock:
            with self._cursor(commit=False) as c:
                c.execute(POSITION)
                position = c.fetchone()[0]
            notifications = self._app.recorder.select_notifications(
                position, self.page_read, inclusive_of_start=False
            )
            if not notifications:
                return False
            # Built outside the transaction: on SQLite it holds the event store's writers.
            built = self._built(self._app.mapper.to_domain_event(n) for n in notifications)
            rows = [r for a in built if (r := row_of(a, self._code_of)) is not None]
            cases = [(str(c), str(a.id)) for a in built if isinstance(a, Issue) for c in a.cases]
            last = notifications[-1].id
            with self._cursor(commit=True) as c:
                c.executemany(UPSERT, rows)
                c.executemany(NOTE_CASE, cases)
                c.execute(ADVANCE, (last, last))
            return True

    def _built(self, events: Iterable[Any]) -> list[Aggregate]:
        """The aggregates as of the last of these events: each one met first in the batch is
        read from the store as of the version before (new ones: from nothing)."""
        built: dict[UUID, Aggregate | None] = {}
        for event in events:
            key = event.originator_id
            if key not in built:
                version = event.originator_version - 1
                built[key] = self._app.repository.get(key, version=version) if version else None
            current = built[key]
            if current is None or event.originator_version > current.version:
                built[key] = event.mutate(current)
        return [a for a in built.values() if a is not None]

    def page(
        self, where: IssueFilter | ActivityFilter, page: int, size: int
    ) -> tuple[list[UUID], int]:
        """The ids of one page of the rows that match, newest first, and how many match."""
        self.catch_up()
        count, select, params = page_sql(where)
        with self._cursor(commit=False) as c:
            c.execute(count, params)
            total = c.fetchone()[0]
            c.execute(select, {**params, "limit": size, "offset": (page - 1) * size})
            return [UUID(row[0]) for row in c.fetchall()], total

    def ids(self, where: RequestFilter | CallbackFilter) -> list[UUID]:
        self.catch_up()
        return self._ids(*all_sql(where))

    def issues_of_case(self, case_id: UUID) -> list[UUID]:
        self.catch_up()
        return self._ids(ISSUES_OF_CASE, (str(case_id),))

    def issue_with_code(self, code: str) -> UUID | None:
        self.catch_up()
        found = self._ids(WITH_CODE, (code,))
        return found[0] if found else None

    def known(self, ids: Iterable[UUID]) -> set[UUID]:
        """Which of these ids name an issue or an activity stored."""
        self.catch_up()
        return set(self._ids(KNOWN, (json.dumps([str(i) for i in ids]),)))

    def _ids(self, sql: str, params: Any) -> list[UUID]:
        with self._cursor(commit=False) as c:
            c.execute(sql, params)
            return [UUID(row[0]) for row in c.fetchall()]
