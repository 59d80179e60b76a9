"""Many issues stored straight into an intake event store, and its notifications read back:
what tests of the relay, the streams and the projections start from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from eventsourcing.persistence import Notification

from services.intake.application import IntakeApplication
from services.intake.domain import DEFAULT_CATEGORIES, Issue, issue_id_for
from shared.relay import event_id

OFFICES = ("yanji", "tumen", "dunhua", "hunchun")
NEW_YEAR = datetime(2020, 12, 31, 12, 0, tzinfo=UTC)


def open_intake(db_path: Path) -> IntakeApplication:
    return IntakeApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db_path)}
    )


def store_issues(app: IntakeApplication, count: int, start: int = 0, chunk: int = 1000) -> None:
    """Store `count` issues, `chunk` per transaction, spread over offices and New Year's Eve."""
    now = datetime.now(UTC)
    for first in range(start, start + count, chunk):
        issues = [
            Issue.submit(
                issue_id_for(OFFICES[n % len(OFFICES)], f"issue-{n}"),
                OFFICES[n % len(OFFICES)],
                f"问题 {n}",
                f"描述 {n}",
                DEFAULT_CATEGORIES[n % len(DEFAULT_CATEGORIES)],
                NEW_YEAR + timedelta(minutes=7 * (n % 200)),
                now=now,
            )
            for n in range(first, min(first + chunk, start + count))
        ]
        app.save(*issues)


def stored_notifications(app: IntakeApplication) -> list[Notification]:
    notifications: list[Notification] = []
    while page := app.recorder.select_notifications(
        notifications[-1].id if notifications else 0, 5000, inclusive_of_start=False
    ):
        notifications.extend(page)
    return notifications


def message_ids(app: IntakeApplication, notifications: list[Notification]) -> list[str]:
    """The message id of each stored event, in notification order."""
    events = [app.mapper.to_domain_event(n) for n in notifications]
    return [event_id(e.originator_id, e.originator_version) for e in events]
