"""The dialect layer (shared/views.py): SQLite's words in PostgreSQL's as psycopg takes them,
and a refusal, naming the statement, for whatever it cannot say the same way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared import views
from shared.views import UntranslatableSQL, postgres_sql, sends_sql, translate


@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        ("SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = %s AND c = %s"),
        ("SELECT a FROM t WHERE b = :b LIMIT :n", "SELECT a FROM t WHERE b = %(b)s LIMIT %(n)s"),
        # a literal `%` is psycopg's `%%`, and a `?` or `:x` inside a literal is no parameter
        (
            "SELECT a FROM t WHERE b LIKE '%x?:y%' || ?",
            "SELECT a FROM t WHERE b LIKE '%%x?:y%%' || %s",
        ),
        (
            "SELECT value FROM json_each(?)",
            "SELECT value FROM JSON_ARRAY_ELEMENTS_TEXT(CAST(%s AS JSON)) AS value",
        ),
        (
            "SELECT j.value FROM json_each(:ids) AS j",
            "SELECT j.value FROM JSON_ARRAY_ELEMENTS_TEXT(CAST(%(ids)s AS JSON)) AS j(value)",
        ),
        (
            "SELECT json_extract(data, '$.cause') FROM facts",
            "SELECT JSON_EXTRACT_PATH_TEXT(CAST(data AS JSON), 'cause') FROM facts",
        ),
        (
            "SELECT group_concat(event_id) FROM facts",
            "SELECT STRING_AGG(event_id, ',') FROM facts",
        ),
        (
            "SELECT MAX(0, CAST(julianday(substr(a, 1, 10)) - julianday(substr(b, 1, 10))"
            " AS INTEGER)) FROM t",
            "SELECT GREATEST(0, CAST(CAST(SUBSTRING(a FROM 1 FOR 10) AS DATE)"
            " - CAST(SUBSTRING(b FROM 1 FOR 10) AS DATE) AS INT)) FROM t",
        ),
        # SQLite's planner hints: a join order, and `+` to keep an index out
        (
            "SELECT * FROM f CROSS JOIN i ON i.id = f.id WHERE +f.step = 'x'",
            "SELECT * FROM f JOIN i ON i.id = f.id WHERE f.step = 'x'",
        ),
        # NULL order left to PostgreSQL (so an index still reads backwards), as written
        (
            "SELECT a FROM t ORDER BY a DESC, b",
            "SELECT a FROM t ORDER BY a DESC, b",
        ),
        (
            "INSERT INTO figures (office, n) VALUES (?, ?) ON CONFLICT (office)"
            " DO UPDATE SET n = figures.n + excluded.n",
            "INSERT INTO figures (office, n) VALUES (%s, %s) ON CONFLICT(office)"
            " DO UPDATE SET n = figures.n + excluded.n",
        ),
        (
            "INSERT INTO t VALUES (?) ON CONFLICT DO NOTHING",
            "INSERT INTO t VALUES (%s) ON CONFLICT DO NOTHING",
        ),
    ],
)
def test_sqlite_words_in_postgres_words(sqlite: str, postgres: str) -> None:
    assert translate(sqlite) == postgres


def test_a_table_is_made_in_postgres_words_without_parameters() -> None:
    statement = (
        "CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0,"
        " note TEXT, PRIMARY KEY (id, n))"
    )
    assert translate(statement, parameters=False) == (
        "CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, n INT NOT NULL DEFAULT 0,"
        " note TEXT, PRIMARY KEY (id, n))"
    )
    assert translate("CREATE INDEX IF NOT EXISTS t_n ON t (n, id)", parameters=False) == (
        "CREATE INDEX IF NOT EXISTS t_n ON t(n, id)"
    )
    with pytest.raises(UntranslatableSQL):
        translate("INSERT INTO t VALUES (?)", parameters=False)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT OR IGNORE INTO t VALUES (?)",
        "INSERT OR REPLACE INTO t VALUES (?)",
        "REPLACE INTO t VALUES (?)",
        "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)",
        "CREATE TABLE t (a VARCHAR(3))",
        "SELECT julianday(a) FROM t",
        "SELECT julianday(substr(a, 1, 10)) - julianday(b) FROM t",
        "SELECT strftime('%Y', a) FROM t",
        "SELECT date('now')",
        "SELECT typeof(a) FROM t",
        "SELECT a FROM t WHERE a GLOB ?",
        "SELECT a FROM t WHERE a = ? COLLATE NOCASE",
        "SELECT a % 2 FROM t",
        "SELECT * FROM t LIMIT -1",
        "SELECT json_each(a) FROM t",
        "SELECT a FROM t WHERE b = ? AND c = :c",
        "SELECT ?1",
        "SELECT @a",
        "SELECT a FROM t; SELECT b FROM t",
        "SELEC a",
    ],
)
def test_what_postgres_would_read_otherwise_is_refused_with_the_statement(statement: str) -> None:
    with pytest.raises(UntranslatableSQL) as refused:
        translate(statement)
    assert statement in str(refused.value)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The declarations as they are, given back as they were after the test."""
    monkeypatch.setattr(views, "_SOURCES", list(views._SOURCES))
    views.declared_sql.cache_clear()
    yield
    monkeypatch.undo()
    views.declared_sql.cache_clear()


@pytest.mark.usefixtures("registry")
def test_only_declared_statements_are_sent_and_each_is_translated_once() -> None:
    statement = "SELECT a FROM test_postgres_sql_only WHERE b = ?"
    with pytest.raises(UntranslatableSQL, match="undeclared"):
        postgres_sql(statement)

    @sends_sql
    def _statements() -> list[str]:
        return [statement]

    assert postgres_sql(statement) == "SELECT a FROM test_postgres_sql_only WHERE b = %s"
    hits = postgres_sql.cache_info().hits
    assert postgres_sql(statement) is postgres_sql(statement)
    assert postgres_sql.cache_info().hits == hits + 2
