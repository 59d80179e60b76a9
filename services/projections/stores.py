"""Where the read model lives (视图存储): SQLite files (the embedded default) or PostgreSQL
schemas (to scale out), by configuration alone (`Settings.projections_on_postgres`).

Either way there is one live view and, after a rebuild, a new one the service switches to:

- SQLite: a file per view; the pointer file `projections.current` names the live one
  (services/projections/rebuild.py).
- PostgreSQL: a schema per view, the configured schema first; the table
  `projections_current` in the configured schema names the live one. A rebuild fills a new
  schema `<schema>_<UTC timestamp>` through the live path (each batch with its tracking, in
  one transaction) and switches the pointer in one statement, so every replica of the
  service moves to it within a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from nats.js import JetStreamContext
from psycopg.sql import SQL, Identifier

from services.projections import rebuild as rebuilding
from services.projections.views import ProjectionView, open_postgres_view, open_projection_view
from shared.settings import Settings


class ViewStore(Protocol):
    def current(self) -> str:
        """The name of the live view: a file's path or a schema."""
        ...

    def open(self, name: str) -> ProjectionView: ...

    def exists(self, name: str) -> bool: ...

    async def rebuild(
        self, js: JetStreamContext, progress: Callable[[int, int], Any] | None = None
    ) -> str:
        """Replay every stream into a new view and make it the live one; its name."""
        ...


class FileViews:
    """Views in SQLite files in the data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def current(self) -> str:
        return str(rebuilding.live_file(self.data_dir))

    def open(self, name: str) -> ProjectionView:
        return open_projection_view(name)

    def exists(self, name: str) -> bool:
        return Path(name).exists()

    async def rebuild(
        self, js: JetStreamContext, progress: Callable[[int, int], Any] | None = None
    ) -> str:
        return str(await rebuilding.rebuild(js, self.data_dir, progress))


class SchemaViews:
    """Views in PostgreSQL schemas of the configured database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema = settings.postgres_schema

    def _connect(self) -> psycopg.Connection[Any]:
        env = self.settings.postgres_env()
        return psycopg.connect(
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"] or None,
            dbname=env["POSTGRES_DBNAME"],
            autocommit=True,
        )

    def _pointer(self) -> SQL | Any:
        return SQL("{0}.projections_current").format(Identifier(self.schema))

    def current(self) -> str:
        try:
            with self._connect() as connection:
                query = SQL("SELECT name FROM {0}").format(self._pointer())
                row = connection.execute(query).fetchone()
        except psycopg.errors.UndefinedTable:
            row = None  # never rebuilt: the configured schema
        return self.schema if row is None else str(row[0])

    def open(self, name: str) -> ProjectionView:
        with self._connect() as connection:
            connection.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(name)))
        return open_postgres_view({**self.settings.postgres_env(), "POSTGRES_SCHEMA": name})

    def exists(self, name: str) -> bool:
        with self._connect() as connection:
            found = connection.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)
            ).fetchone()
        return found is not None

    def switch_to(self, name: str) -> None:
        with self._connect() as connection:
            connection.execute(
                SQL("CREATE TABLE IF NOT EXISTS {0} (one BOOLEAN PRIMARY KEY, name TEXT)").format(
                    self._pointer()
                )
            )
            connection.execute(
                SQL(
                    "INSERT INTO {0} VALUES (TRUE, %s)"
                    " ON CONFLICT (one) DO UPDATE SET name = excluded.name"
                ).format(self._pointer()),
                (name,),
            )

    async def rebuild(
        self, js: JetStreamContext, progress: Callable[[int, int], Any] | None = None
    ) -> str:
        target = f"{self.schema}_{datetime.now(UTC).strftime('%Y%m%dt%H%M%S%f')}"
        view = await asyncio.to_thread(self.open, target)
        try:
            ends = await rebuilding.stream_ends(js)
            total, done = sum(ends.values()), 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                if progress is not None:
                    progress(done, total)

            apply = rebuilding.in_thread(view)
            for spec in rebuilding.UPSTREAMS:
                await rebuilding.replay(js, apply, spec, 0, ends[spec.name], advance=advance)
        finally:
            view.datastore.close()
        await asyncio.to_thread(self.switch_to, target)
        return target


def view_store(settings: Settings) -> ViewStore:
    if settings.projections_on_postgres:
        return SchemaViews(settings)
    return FileViews(settings.data_dir)
