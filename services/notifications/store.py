"""The notifications' own store (通知存储): notices, their deliveries, the recipients
directory and the few facts reminders and digests need, in SQLite (the embedded default) or
a PostgreSQL schema of its own, from the same SQL (shared/views.py).

A batch of upstream events, the notices they make with their deliveries, and the stream
position are written in one transaction (services/notifications/upstream.py): a notice
exists before its event is acknowledged, and a redelivered event makes nothing new (the ids
are deterministic besides).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

import psycopg
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from psycopg.sql import SQL, Identifier

from services.notifications.domain import CaseFacts, IssueFacts, Notice
from services.notifications.upstream import UpstreamRecorder, stamp
from shared.files import private_sqlite
from shared.settings import Settings
from shared.views import (
    PortableCursor,
    PostgresView,
    SQLiteView,
    sends_sql,
    translate,
    view_datastore,
)

TABLES = [
    """CREATE TABLE IF NOT EXISTS notifications_notices (
        id TEXT PRIMARY KEY, cause TEXT NOT NULL, kind TEXT NOT NULL, office TEXT NOT NULL,
        recipient TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL,
        created_at TEXT NOT NULL, subject_id TEXT, attachment_name TEXT,
        attachment_type TEXT, attachment TEXT)""",
    """CREATE TABLE IF NOT EXISTS notifications_deliveries (
        id TEXT PRIMARY KEY, notice_id TEXT NOT NULL, channel TEXT NOT NULL,
        address TEXT NOT NULL, secret TEXT, status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, not_before TEXT NOT NULL,
        sent_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS notifications_due ON notifications_deliveries (status, not_before)",
    "CREATE INDEX IF NOT EXISTS notifications_inbox ON notifications_deliveries (address, channel)",
    # A table of its own rather than a column: a store made before it gains it as it opens.
    """CREATE TABLE IF NOT EXISTS notifications_reads (
        notice_id TEXT NOT NULL, user_id TEXT NOT NULL, read_at TEXT NOT NULL,
        PRIMARY KEY (notice_id, user_id))""",
    # Each taking of a delivery to send it, before it goes out (tables of their own, as the
    # reads: a store made before them gains them as it opens). A delivery found `sending` at
    # a restart was in flight at a crash: it is sent again, and counted here.
    """CREATE TABLE IF NOT EXISTS notifications_claims (
        delivery_id TEXT PRIMARY KEY, claims INTEGER NOT NULL, claimed_at TEXT NOT NULL,
        resent_after_crash INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS notifications_recipients (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, emails TEXT NOT NULL, robots TEXT NOT NULL,
        users TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS notifications_cases (
        case_id TEXT PRIMARY KEY, office TEXT NOT NULL, department TEXT NOT NULL,
        deadline TEXT NOT NULL, number TEXT, done INTEGER NOT NULL, overdue INTEGER NOT NULL,
        origin TEXT NOT NULL, subject TEXT NOT NULL, meeting_title TEXT)""",
    """CREATE TABLE IF NOT EXISTS notifications_issues (
        issue_id TEXT PRIMARY KEY, office TEXT NOT NULL, submitted_on TEXT NOT NULL,
        screened INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS notifications_meetings (
        meeting_id TEXT PRIMARY KEY, offices TEXT NOT NULL, kind TEXT NOT NULL,
        title TEXT NOT NULL, theme TEXT NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
        venue TEXT, sequence INTEGER NOT NULL, cancelled INTEGER NOT NULL)""",
]

Page = tuple[list[dict[str, Any]], int]
"""A page of rows and the count of all of them."""


class NotificationStore(UpstreamRecorder):
    """The SQL of the store, for either database: what the consumers write (upstream.py),
    what the scheduler reads, the sender's side, what the API shows, the directory."""

    # --- what the scheduler reads ------------------------------------------------------------

    def cases(self) -> list[CaseFacts]:
        with self.read() as c:
            c.execute(CASES)
            return [
                CaseFacts(
                    r["case_id"],
                    r["office"],
                    r["department"],
                    date.fromisoformat(r["deadline"]),
                    r["number"],
                    bool(r["done"]),
                    bool(r["overdue"]),
                )
                for r in c.fetchall()
            ]

    def issues(self) -> list[IssueFacts]:
        with self.read() as c:
            c.execute(ISSUES)
            return [
                IssueFacts(
                    r["issue_id"],
                    r["office"],
                    date.fromisoformat(r["submitted_on"]),
                    bool(r["screened"]),
                )
                for r in c.fetchall()
            ]

    def add_notices(self, notices: Sequence[Notice]) -> None:
        with self.write() as c:
            for notice in notices:
                self.add_notice(c, notice, None)

    # --- the sender's side -------------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Deliveries due, marked `sending` and their claim recorded (how many times, when)
        before anything is sent: after a crash they are found `sending` and sent again (with
        the same Message-ID); a delivery recorded `sent` is never taken again."""
        with self.write() as c:
            c.execute(DUE, (stamp(now), limit))
            due = [dict(row) for row in c.fetchall()]
            c.executemany(MARK_SENDING, [(row["id"],) for row in due])
            c.executemany(CLAIM, [(row["id"], stamp(now)) for row in due])
        return due

    def requeue_interrupted(self, now: datetime) -> list[str]:
        """What a sender that died was sending (in flight at the crash: the server may have
        taken it or not): due again for the new holder of the lease, each counted in its
        claim's `resent_after_crash`. Only these: whatever was recorded `sent` stays sent."""
        with self.write() as c:
            c.execute(SENDING)
            ids = [row["id"] for row in c.fetchall()]
            c.executemany(MARK_PENDING, [(delivery,) for delivery in ids])
            c.executemany(RESENT_AFTER_CRASH, [(delivery, stamp(now)) for delivery in ids])
        return ids

    def mark_sent(self, delivery: str, at: datetime) -> None:
        with self.write() as c:
            c.execute(MARK_SENT, (stamp(at), delivery))

    def record_failure(self, delivery: str, error: str, dead: bool) -> None:
        with self.write() as c:
            c.execute(MARK_FAILED, (error[:1000], "dead" if dead else "sending", delivery))

    def resend(
        self, deliveries: Sequence[str] | None, offices: Sequence[str] | None, now: datetime
    ) -> int:
        """Dead letters (all, or those named; of `offices`, or of every office) due again,
        with a fresh count of attempts."""
        sql, params = dead_sql(deliveries, offices)
        with self.write() as c:
            c.execute(sql, params)
            ids = [(stamp(now), row["id"]) for row in c.fetchall()]
            c.executemany(MARK_DUE_AGAIN, ids)
        return len(ids)

    # --- what the API shows ------------------------------------------------------------------

    def summary(self, offices: Sequence[str] | None, now: datetime) -> dict[str, int]:
        """How many email and robot deliveries (of `offices`, or of all) are in each state:
        `due` (pending, due by `now`), `later` (pending, due after), `in_flight`, `retrying`
        (sending after a failed attempt), `sent`, `dead`; and `resent_after_crash`, the sends
        again of deliveries found in flight at a restart."""
        sql, params = summary_sql(offices)
        found = dict.fromkeys(("due", "later", "in_flight", "retrying", "sent", "dead"), 0)
        found["resent_after_crash"] = 0
        with self.read() as c:
            c.execute(sql, (stamp(now), *params))
            for row in c.fetchall():
                found[row["state"]] = int(row["deliveries"])
                found["resent_after_crash"] += int(row["resent"] or 0)
        return found

    def deliveries(
        self,
        status: str | None,
        limit: int,
        offset: int,
        offices: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        return self.deliveries_page(status, limit, offset, offices)[0]

    def deliveries_page(
        self,
        status: str | None,
        limit: int,
        offset: int,
        offices: Sequence[str] | None = None,
    ) -> Page:
        return self._page(deliveries_sql(status, offices), limit, offset)

    def notices(self, offices: Sequence[str] | None, limit: int, offset: int) -> Page:
        return self._page(notices_sql(offices), limit, offset)

    def inbox(self, user: str, limit: int, offset: int, unread: bool = False) -> Page:
        return self._page(inbox_sql(user, unread), limit, offset)

    def unread(self, user: str) -> int:
        return self.inbox(user, 0, 0, unread=True)[1]

    def mark_read(self, user: str, notice: str, at: datetime) -> bool:
        """The notice read by `user` (its first reading kept); False when it is not in the
        user's inbox."""
        with self.write() as c:
            c.execute(IN_INBOX, (user, notice))
            if c.fetchone() is None:
                return False
            c.execute(MARK_READ, (notice, user, stamp(at)))
        return True

    def _page(self, listing: Listing, limit: int, offset: int) -> Page:
        """One page of a listing's rows and how many there are."""
        count, page = page_sql(listing)
        with self.read() as c:
            c.execute(count, listing.params)
            total = int(c.fetchone()[0])
            c.execute(page, (*listing.params, limit, offset))
            return [dict(row) for row in c.fetchall()], total

    # --- the directory -----------------------------------------------------------------------

    def put_recipient(
        self, key: str, name: str, emails: list[str], robots: list[dict[str, Any]], users: list[str]
    ) -> None:
        with self.write() as c:
            c.execute(
                PUT_RECIPIENT,
                (key, name, json.dumps(emails), json.dumps(robots), json.dumps(users)),
            )

    def delete_recipient(self, key: str) -> bool:
        with self.write() as c:
            c.execute(HAS_RECIPIENT, (key,))
            found = c.fetchone() is not None
            c.execute(DELETE_RECIPIENT, (key,))
        return found

    def recipients(self, prefix: str | None = None) -> list[dict[str, Any]]:
        with self.read() as c:
            c.execute(RECIPIENTS, (f"{prefix or ''}%",))
            return [
                {
                    "key": r["key"],
                    "name": r["name"],
                    "emails": json.loads(r["emails"]),
                    "robots": json.loads(r["robots"]),
                    "users": json.loads(r["users"]),
                }
                for r in c.fetchall()
            ]

    # per database: `read` comes from shared/views.py, `write` from the subclasses below
    read: Any
    write: Any


# --- the SQL (in SQLite's words; shared/views.py says it in PostgreSQL's) -------------------

CASES = "SELECT * FROM notifications_cases ORDER BY case_id"
ISSUES = "SELECT * FROM notifications_issues ORDER BY issue_id"
DUE = (
    "SELECT d.id, d.channel, d.address, d.secret, d.attempts, n.id AS notice_id,"
    " n.subject, n.body, n.created_at, n.attachment_name, n.attachment_type,"
    " n.attachment FROM notifications_deliveries d"
    " JOIN notifications_notices n ON n.id = d.notice_id"
    " WHERE d.status = 'pending' AND d.not_before <= ?"
    " ORDER BY d.not_before, d.id LIMIT ?"
)
MARK_SENDING = "UPDATE notifications_deliveries SET status = 'sending' WHERE id = ?"
SENDING = "SELECT id FROM notifications_deliveries WHERE status = 'sending'"
MARK_PENDING = "UPDATE notifications_deliveries SET status = 'pending' WHERE id = ?"
CLAIM = (
    "INSERT INTO notifications_claims VALUES (?, 1, ?, 0) ON CONFLICT (delivery_id)"
    " DO UPDATE SET claims = notifications_claims.claims + 1, claimed_at = excluded.claimed_at"
)
RESENT_AFTER_CRASH = (
    "INSERT INTO notifications_claims VALUES (?, 1, ?, 1) ON CONFLICT (delivery_id)"
    " DO UPDATE SET resent_after_crash = notifications_claims.resent_after_crash + 1"
)
MARK_SENT = (
    "UPDATE notifications_deliveries SET status = 'sent', sent_at = ?,"
    " attempts = attempts + 1 WHERE id = ?"
)
MARK_FAILED = (
    "UPDATE notifications_deliveries SET attempts = attempts + 1, last_error = ?,"
    " status = ? WHERE id = ?"
)
MARK_DUE_AGAIN = (
    "UPDATE notifications_deliveries SET status = 'pending', attempts = 0,"
    " last_error = NULL, not_before = ? WHERE id = ?"
)
IN_INBOX = (
    "SELECT 1 FROM notifications_deliveries"
    " WHERE channel = 'inbox' AND address = ? AND notice_id = ?"
)
MARK_READ = (
    "INSERT INTO notifications_reads VALUES (?, ?, ?) ON CONFLICT (notice_id, user_id) DO NOTHING"
)
PUT_RECIPIENT = (
    "INSERT INTO notifications_recipients VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET name = excluded.name,"
    " emails = excluded.emails, robots = excluded.robots, users = excluded.users"
)
HAS_RECIPIENT = "SELECT 1 FROM notifications_recipients WHERE key = ?"
DELETE_RECIPIENT = "DELETE FROM notifications_recipients WHERE key = ?"
RECIPIENTS = "SELECT * FROM notifications_recipients WHERE key LIKE ? ORDER BY key"
OF_OFFICES = "n.office IN (SELECT value FROM json_each(?))"


class Listing(NamedTuple):
    """A query whose rows the API pages through, in `order` (of its columns)."""

    sql: str
    params: list[Any]
    order: str


def page_sql(listing: Listing) -> tuple[str, str]:
    """How many rows a listing has, and one page of them (`LIMIT ? OFFSET ?` last)."""
    return (
        f"SELECT COUNT(*) FROM ({listing.sql}) AS q",
        f"SELECT * FROM ({listing.sql}) AS q ORDER BY {listing.order} LIMIT ? OFFSET ?",
    )


def deliveries_sql(status: str | None, offices: Sequence[str] | None) -> Listing:
    where, params = ["d.channel != 'inbox'"], []
    if status is not None:
        where.append("d.status = ?")
        params.append(status)
    if offices is not None:
        where.append(OF_OFFICES)
        params.append(json.dumps(list(offices)))
    return Listing(
        "SELECT d.id, d.notice_id, d.channel, d.address, d.status, d.attempts,"
        " d.last_error, d.sent_at, n.kind, n.subject, n.recipient, n.office,"
        " n.created_at, COALESCE(c.claims, 0) AS claims, c.claimed_at,"
        " COALESCE(c.resent_after_crash, 0) AS resent_after_crash"
        " FROM notifications_deliveries d"
        " JOIN notifications_notices n ON n.id = d.notice_id"
        " LEFT JOIN notifications_claims c ON c.delivery_id = d.id"
        f" WHERE {' AND '.join(where)}",
        params,
        "created_at, id",
    )


def summary_sql(offices: Sequence[str] | None) -> tuple[str, list[str]]:
    """Email and robot deliveries counted by state (the first parameter: now), with the
    sends again after a crash."""
    where, params = ["d.channel != 'inbox'"], []
    if offices is not None:
        where.append(OF_OFFICES)
        params.append(json.dumps(list(offices)))
    return (
        "SELECT q.state, COUNT(*) AS deliveries, SUM(q.resent) AS resent FROM (SELECT CASE"
        " WHEN d.status = 'pending' AND d.not_before <= ? THEN 'due'"
        " WHEN d.status = 'pending' THEN 'later'"
        " WHEN d.status = 'sending' AND d.attempts > 0 THEN 'retrying'"
        " WHEN d.status = 'sending' THEN 'in_flight'"
        " ELSE d.status END AS state, COALESCE(c.resent_after_crash, 0) AS resent"
        " FROM notifications_deliveries d JOIN notifications_notices n ON n.id = d.notice_id"
        " LEFT JOIN notifications_claims c ON c.delivery_id = d.id"
        f" WHERE {' AND '.join(where)}) AS q GROUP BY q.state",
        params,
    )


def notices_sql(offices: Sequence[str] | None) -> Listing:
    which = "" if offices is None else " WHERE office IN (SELECT value FROM json_each(?))"
    return Listing(
        "SELECT id, cause, kind, office, recipient, subject, body, created_at,"
        f" subject_id, attachment_name FROM notifications_notices{which}",
        [] if offices is None else [json.dumps(list(offices))],
        "created_at, id",
    )


def inbox_sql(user: str, unread: bool) -> Listing:
    return Listing(
        "SELECT n.id, n.kind, n.office, n.subject, n.body, n.created_at,"
        " n.subject_id, n.attachment_name, r.read_at FROM notifications_deliveries d"
        " JOIN notifications_notices n ON n.id = d.notice_id"
        " LEFT JOIN notifications_reads r ON r.notice_id = d.notice_id"
        " AND r.user_id = d.address"
        " WHERE d.channel = 'inbox' AND d.address = ?"
        + (" AND r.read_at IS NULL" if unread else ""),
        [user],
        "created_at DESC, id",
    )


def dead_sql(
    deliveries: Sequence[str] | None, offices: Sequence[str] | None
) -> tuple[str, list[str]]:
    """The dead letters (all, or those named; of `offices`, or of every office)."""
    where, params = ["d.status = 'dead'"], []
    if deliveries is not None:
        where.append("d.id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(deliveries)))
    if offices is not None:
        where.append(OF_OFFICES)
        params.append(json.dumps(list(offices)))
    return (
        "SELECT d.id FROM notifications_deliveries d"
        f" JOIN notifications_notices n ON n.id = d.notice_id WHERE {' AND '.join(where)}",
        params,
    )


@sends_sql
def _statements() -> Iterator[str]:
    yield from (CASES, ISSUES, DUE, MARK_SENDING, SENDING, MARK_PENDING, MARK_SENT)
    yield from (CLAIM, RESENT_AFTER_CRASH)
    yield from (MARK_FAILED, MARK_DUE_AGAIN, IN_INBOX, MARK_READ, PUT_RECIPIENT)
    yield from (HAS_RECIPIENT, DELETE_RECIPIENT, RECIPIENTS)
    some = ("x",)
    for deliveries, offices in itertools.product((None, some), (None, some)):
        yield dead_sql(deliveries, offices)[0]
    for status, offices in itertools.product((None, "x"), (None, some)):
        yield from page_sql(deliveries_sql(status, offices))
    for offices in (None, some):
        yield from page_sql(notices_sql(offices))
        yield summary_sql(offices)[0]
    for unread in (False, True):
        yield from page_sql(inbox_sql("x", unread))


class SQLiteNotificationStore(NotificationStore, SQLiteView):
    """The store in a SQLite file of its own."""

    # WAL with NORMAL: a power cut may lose the last transactions whole, never half of one:
    # notices go with their tracking record (the events are consumed again) and a lost
    # `sent` sends the message again under its Message-ID. An fsync per delivery recorded
    # held the sender to the disk's pace (bench/README.md).
    pragmas = ("PRAGMA synchronous = NORMAL",)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *TABLES]

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        with self.datastore.get_connection(commit=True) as connection:
            with connection.cursor() as settings:
                for pragma in self.pragmas:
                    settings.execute(pragma)
            with connection.transaction(commit=True) as c:
                yield c


class PostgresNotificationStore(NotificationStore, PostgresView):
    """The store in a PostgreSQL schema of its own, shared by every replica."""

    def view_table_statements(self) -> list[str]:
        return [translate(statement, parameters=False) for statement in TABLES]

    @contextlib.contextmanager
    def write(self) -> Iterator[PortableCursor]:
        with self.datastore.transaction(commit=True) as curs:
            yield PortableCursor(curs)


def open_store(
    settings: Settings, office_names: Mapping[str, str] | None = None
) -> NotificationStore:
    """SQLite `notifications.sqlite` in the data folder, or with `SHANGLIANG_EVENT_STORE=
    postgres` the schema `<SHANGLIANG_POSTGRES_SCHEMA>_notifications` (its own tracking table:
    the projections' in the configured schema tracks the same streams). `office_names`: the
    offices' letter headings where the deployment set its own."""
    store = _opened(settings)
    store.office_names = dict(office_names or {})
    return store


def _opened(settings: Settings) -> NotificationStore:
    if settings.event_store == "postgres":
        env = {**settings.postgres_env()}
        env["POSTGRES_SCHEMA"] = f"{settings.postgres_schema}_notifications"
        with psycopg.connect(
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None,
            dbname=env["POSTGRES_DBNAME"],
            autocommit=True,
        ) as connection:
            connection.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(env["POSTGRES_SCHEMA"]))
            )
        store = PostgresNotificationStore(view_datastore(env))
        store.create_table()
        return store
    factory = InfrastructureFactory.construct(
        Environment(
            "notifications",
            {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": private_sqlite(str(settings.data_file("notifications.sqlite"))),
                "SQLITE_LOCK_TIMEOUT": "10",
            },
        )
    )
    store = factory.tracking_recorder(SQLiteNotificationStore)
    assert isinstance(store, SQLiteNotificationStore)
    return store
