"""Every statement the views send to PostgreSQL, gathered from the code that sends it, said in
PostgreSQL's words and run there: a statement that does not translate, or that PostgreSQL
does not take once translated, fails here and not in a county's deployment."""

from __future__ import annotations

import ast
import importlib
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services.console.accounts import AccountStore
from services.intake.application import IntakeApplication
from services.notifications.domain import Notice
from services.notifications.store import NotificationStore, PostgresNotificationStore, open_store
from services.projections.views import open_postgres_view
from shared.settings import Settings
from shared.views import declared_sql, postgres_sql, view_datastore
from tests.conftest import POSTGRES, postgres_settings

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "shared" / "views.py"


def senders() -> list[Path]:
    """The modules that send SQL through shared/views.py: those that declare it."""
    return [
        path
        for folder in ("services", "shared")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != LAYER and "sends_sql" in path.read_text(encoding="utf-8")
    ]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@pytest.fixture(scope="module")
def statements() -> list[str]:
    for path in senders():
        importlib.import_module(module_name(path))
    return sorted(declared_sql())


def test_the_views_and_the_notifications_declare_their_statements(statements: list[str]) -> None:
    names = {module_name(path) for path in senders()}
    assert {
        "services.projections.views",
        "services.projections.queries",
        "services.notifications.store",
        "services.notifications.upstream",
        "services.console.accounts",
        "services.intake.catalog",
    } <= names
    assert len(statements) > 100


def test_no_module_sends_a_statement_it_did_not_declare(statements: list[str]) -> None:
    """Statements are named (constants, builders), not written inline where a declaration
    could miss them; and a named constant that is sent is declared."""
    inline = []
    undeclared = []
    for path in senders():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = importlib.import_module(module_name(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "executemany")
                and node.args
            ):
                continue
            sql = node.args[0]
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if isinstance(sql, ast.Constant | ast.JoinedStr | ast.BinOp):
                inline.append(where)
            elif isinstance(sql, ast.Name):
                value = getattr(module, sql.id, None)
                if isinstance(value, str) and value not in statements:
                    undeclared.append(f"{where} {sql.id}")
    assert inline == [], "name these statements and declare them (shared.views.sends_sql)"
    assert undeclared == []


PLACEHOLDER = re.compile(r"%(?:%|s|\((\w+)\)s)")


def nulls(sql: str) -> tuple[None, ...] | dict[str, None]:
    """A NULL for each of the statement's parameters, as psycopg takes them."""
    found = [m for m in PLACEHOLDER.finditer(sql) if m.group(0) != "%%"]
    if any(m.group(1) for m in found):
        return {m.group(1): None for m in found}
    return (None,) * len(found)


@pytest.fixture
def schema(postgres_schema: str) -> Iterator[str]:
    """A scratch schema holding the tables of the projections' view, of the notifications'
    store, of the workbench's accounts and of intake's catalog, each made by the code that
    makes them in production."""
    env = postgres_settings(postgres_schema).postgres_env()
    view = open_postgres_view(env)
    store = PostgresNotificationStore(view_datastore(env))
    store.create_table()
    view.datastore.close()
    store.datastore.close()
    AccountStore(postgres_settings(postgres_schema, event_store="postgres"))
    IntakeApplication(env=env).close()
    yield postgres_schema


def test_every_declared_statement_translates_and_runs_on_postgres(
    statements: list[str], schema: str
) -> None:
    """Each statement runs, with NULL for every parameter, inside a transaction that is
    rolled back: PostgreSQL parses, checks and plans each. A NULL refused by a NOT NULL
    column counts as run (the statement was executing)."""
    failed = []
    with psycopg.connect(**POSTGRES, options=f"-c search_path={schema}") as connection:
        for sql in statements:
            translated = postgres_sql(sql)
            try:
                with connection.transaction(force_rollback=True):
                    connection.execute(translated, nulls(translated))
            except psycopg.errors.NotNullViolation:
                pass
            except psycopg.Error as error:
                failed.append(f"{sql}\n  -> {translated}\n  !! {error}")
    assert failed == [], "\n\n".join(failed)


def test_the_notifications_store_answers_on_postgres_as_on_sqlite(
    postgres_schema: str, tmp_path: Path
) -> None:
    """The store's own statements (the consumers' are run above) on both databases: the same
    deliveries, pages, inbox, dead letters and directory."""
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    answers = []
    for settings in (
        Settings(data_dir=tmp_path / "sqlite"),
        postgres_settings(postgres_schema, data_dir=tmp_path / "pg", event_store="postgres"),
    ):
        store = open_store(settings)
        try:
            answers.append(_go_through(store, now))
        finally:
            store.datastore.close()
    lite, pg = answers
    assert pg == lite
    assert lite["due"] and lite["dead"] and lite["inbox"][1] == 2
    assert lite["summary"][0]["resent_after_crash"] == len(lite["requeued"]) > 0


def _go_through(store: NotificationStore, now: datetime) -> dict[str, Any]:
    robot = {"kind": "wecom", "url": "http://robot.example/hook"}
    store.put_recipient("office:yanji", "延吉市政协", ["a@yanji.example"], [robot], ["clerk-1"])
    store.put_recipient("office:longjing", "龙井市政协", ["b@lj.example"], [], [])
    notices = [
        Notice(
            uuid.UUID(int=i),
            f"cause-{i}",
            "issue_digest",
            office,
            f"office:{office}",
            f"主题 {i} 100%",
            "正文",
            now - timedelta(minutes=i),
        )
        for i, office in enumerate(["yanji", "longjing", "yanji"])
    ]
    store.add_notices(notices)
    due = store.claim_due(now, 10)
    store.mark_sent(due[0]["id"], now)
    store.record_failure(due[1]["id"], "refused", dead=True)
    answers: dict[str, Any] = {
        "due": [d["id"] for d in due],
        "requeued": store.requeue_interrupted(now),
        "summary": (store.summary(None, now), store.summary(["yanji"], now)),
        "dead": store.deliveries("dead", 50, 0, ["yanji", "longjing"]),
        "all": store.deliveries_page(None, 2, 1),
        "sent": store.deliveries_page("sent", 50, 0, ["yanji"]),
        "notices": store.notices(None, 50, 0),
        "of_yanji": store.notices(["yanji"], 1, 0),
        "read": store.mark_read("clerk-1", str(notices[0].id), now),
        "not_mine": store.mark_read("clerk-2", str(notices[0].id), now),
        "inbox": store.inbox("clerk-1", 50, 0),
        "unread": store.unread("clerk-1"),
        "resent": store.resend([due[1]["id"]], ["yanji", "longjing"], now),
        "resent_all": store.resend(None, None, now),
        "recipients": store.recipients("office:"),
        "deleted": (store.delete_recipient("office:longjing"), store.delete_recipient("x")),
        "left": store.recipients(),
        "cases": store.cases(),
        "issues": store.issues(),
    }
    return answers
