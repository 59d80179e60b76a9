"""Read models (查询视图) built only from the services' streams, each with its tracking record."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.sqlite import SQLiteCursor
from eventsourcing.utils import Environment

from shared.consumer import Delivered
from shared.contracts import IssueSubmittedV1
from shared.views import SQLiteView

CHINA = ZoneInfo("Asia/Shanghai")

STATUS_SUBMITTED = "submitted"
STATUS_LABELS = {STATUS_SUBMITTED: "已收集"}


def china_year(moment: datetime) -> int:
    """The calendar year in China Standard Time: the year an event counts in."""
    return moment.astimezone(CHINA).year


class IssueStatusView(SQLiteView):
    """问题状态: one row per issue with its combined status, and its timeline across services."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS issue_status ("
            " issue_id TEXT PRIMARY KEY,"
            " office TEXT NOT NULL,"
            " title TEXT NOT NULL,"
            " category TEXT NOT NULL,"
            " status TEXT NOT NULL,"
            " submitted_at TEXT NOT NULL,"
            " year INTEGER NOT NULL,"
            " updated_at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS issue_status_by_year ON issue_status (year, office)",
            # Keyed by event, not by stream position: an event the relay published again
            # (after a purge or a lossy server crash) sits at a new position, and a rebuilt
            # view must equal the live one whatever the stream's history.
            "CREATE TABLE IF NOT EXISTS issue_timeline ("
            " issue_id TEXT NOT NULL,"
            " event_id TEXT NOT NULL,"
            " stream TEXT NOT NULL,"
            " at TEXT NOT NULL,"
            " step TEXT NOT NULL,"
            " PRIMARY KEY (issue_id, event_id))",
        ]

    def apply_message(self, c: SQLiteCursor, stream: str, message: Delivered) -> None:
        event = message.contract
        if isinstance(event, IssueSubmittedV1):
            c.execute(
                "INSERT OR IGNORE INTO issue_status VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(event.issue_id),
                    event.office,
                    event.title,
                    event.category,
                    STATUS_SUBMITTED,
                    event.submitted_at.isoformat(),
                    china_year(event.submitted_at),
                    message.envelope.time.isoformat(),
                ),
            )
            self._add_step(c, str(event.issue_id), stream, message, STATUS_SUBMITTED)

    @staticmethod
    def _add_step(
        c: SQLiteCursor, issue_id: str, stream: str, message: Delivered, step: str
    ) -> None:
        c.execute(
            "INSERT OR IGNORE INTO issue_timeline VALUES (?, ?, ?, ?, ?)",
            (issue_id, message.envelope.id, stream, message.envelope.time.isoformat(), step),
        )

    def issue(self, issue_id: str) -> dict[str, Any] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT * FROM issue_status WHERE issue_id = ?", (issue_id,))
            row = c.fetchone()
            if row is None:
                return None
            c.execute(
                "SELECT at, step, stream, event_id FROM issue_timeline "
                "WHERE issue_id = ? ORDER BY at, stream, event_id",
                (issue_id,),
            )
            timeline = [dict(step) for step in c.fetchall()]
        return {**dict(row), "timeline": timeline}

    def issues_collected(self, year: int) -> dict[str, int]:
        """Issues collected per office in a year (收集问题和建议)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT office, COUNT(*) AS n FROM issue_status WHERE year = ? "
                "GROUP BY office ORDER BY office",
                (year,),
            )
            return {row["office"]: row["n"] for row in c.fetchall()}

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the read model, in a fixed order: to compare a rebuild with the live one."""
        with self.datastore.transaction(commit=False) as c:
            tables: dict[str, list[tuple[Any, ...]]] = {}
            for table, order in (
                ("issue_status", "issue_id"),
                ("issue_timeline", "issue_id, event_id"),
            ):
                c.execute(f"SELECT * FROM {table} ORDER BY {order}")
                tables[table] = [tuple(row) for row in c.fetchall()]
            return tables


def open_issue_status_view(
    db_path: str, view_class: type[IssueStatusView] = IssueStatusView
) -> IssueStatusView:
    """The view in its own SQLite file (created on first use)."""
    factory = InfrastructureFactory.construct(
        Environment(
            "projections",
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": db_path},
        )
    )
    view = factory.tracking_recorder(view_class)
    assert isinstance(view, IssueStatusView)
    return view
