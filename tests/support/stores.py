"""Where the services under test keep their events and views, read from outside: SQLite
files in a data folder or a PostgreSQL schema, counted as the services' own stores find them."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.sql import SQL, Identifier

from services.projections.stores import view_store
from shared.settings import Settings


@dataclass(frozen=True)
class Store:
    """Where the targets keep their events: SQLite files in the work folder, or a fresh
    PostgreSQL schema (the same for both targets' runs, emptied in between)."""

    settings: Settings

    def env(self, application: str) -> dict[str, str]:
        return self.settings.event_store_env(application)

    def service_env(self) -> dict[str, str]:
        s = self.settings
        if s.event_store != "postgres":
            return {}
        return {
            "SHANGLIANG_EVENT_STORE": "postgres",
            "SHANGLIANG_POSTGRES_HOST": s.postgres_host,
            "SHANGLIANG_POSTGRES_PORT": str(s.postgres_port),
            "SHANGLIANG_POSTGRES_USER": s.postgres_user,
            "SHANGLIANG_POSTGRES_PASSWORD": s.postgres_password,
            "SHANGLIANG_POSTGRES_DBNAME": s.postgres_dbname,
            "SHANGLIANG_POSTGRES_SCHEMA": s.postgres_schema,
        }

    def count_events(self, application: str) -> int:
        s = self.settings
        if s.event_store != "postgres":
            return count_rows(s.data_dir / f"{application}.sqlite", "stored_events")
        return self._count_postgres(s.postgres_schema, f"{application}_events")

    def count_projected_issues(self) -> int:
        """Rows of `issue_status` in the projections service's live view, found as the
        service finds it (its own `view_store`): a SQLite file in the data folder, or, when
        the event stores are in PostgreSQL, a schema there. Counting a file that a service on
        PostgreSQL never writes gave "0 projected" for a view that was in fact up to date."""
        live = view_store(self.settings).current()
        if self.settings.projections_on_postgres:
            return self._count_postgres(live, "issue_status")
        return count_rows(Path(live), "issue_status")

    def _count_postgres(self, schema: str, table: str) -> int:
        s = self.settings
        with psycopg.connect(
            host=s.postgres_host, port=s.postgres_port, user=s.postgres_user,
            password=s.postgres_password or None, dbname=s.postgres_dbname,
        ) as c:  # fmt: skip
            try:
                query = SQL("SELECT COUNT(*) FROM {0}.{1}").format(
                    Identifier(schema), Identifier(table)
                )
                return int(c.execute(query).fetchone()[0])  # type: ignore[index]
            except psycopg.errors.UndefinedTable:
                return 0


def count_rows(db: Path, table: str) -> int:
    """Read a service's SQLite file from outside (WAL mode allows a concurrent reader)."""
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as c:
        try:
            return int(c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # the table is not created yet
