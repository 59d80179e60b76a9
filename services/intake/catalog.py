"""Intake's lists (目录): every activity and issue in memory, following the notification log.

The event store finds an aggregate by id only. Lists filter by office, status, category,
community and dates, so intake keeps the aggregates themselves in memory, built by applying
the stored events in notification order, exactly as the repository builds one. A pilot
year is a few hundred issues per office; a hundred thousand fit easily.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from services.intake.activity import OutreachActivity
from services.intake.domain import Issue
from shared.clock import china_day

A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    page_size: int


class Catalog:
    """The aggregates of one application, kept up to date from its notification log."""

    page_read = 5000

    def __init__(
        self,
        application: Application[UUID],
        on_new: Callable[[Aggregate], None] | None = None,
    ) -> None:
        self._app = application
        self._on_new = on_new
        self._position = 0
        self._aggregates: dict[UUID, Aggregate] = {}
        self._lock = threading.Lock()

    def catch_up(self) -> None:
        """Apply whatever was stored since the last call (cheap when nothing was)."""
        with self._lock:
            while notifications := self._app.recorder.select_notifications(
                self._position, self.page_read, inclusive_of_start=False
            ):
                for notification in notifications:
                    domain_event = self._app.mapper.to_domain_event(notification)
                    current = self._aggregates.get(domain_event.originator_id)
                    # A version already applied (a save read back twice) changes nothing.
                    if current is None or domain_event.originator_version > current.version:
                        changed = domain_event.mutate(current)
                        self._aggregates[domain_event.originator_id] = changed
                        if current is None and self._on_new is not None:
                            self._on_new(changed)
                self._position = notifications[-1].id

    def get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        self.catch_up()
        found = self._aggregates.get(aggregate_id)
        return found if isinstance(found, kind) else None

    def existing(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        self.catch_up()
        return {i: self._aggregates[i] for i in ids if i in self._aggregates}

    def all(self, kind: type[A], matches: Callable[[A], bool]) -> list[A]:
        self.catch_up()
        with self._lock:
            return [a for a in self._aggregates.values() if isinstance(a, kind) and matches(a)]

    def select(
        self,
        kind: type[A],
        matches: Callable[[A], bool],
        order: Callable[[A], Any],
        page: int,
        page_size: int,
    ) -> Page:
        """One page of the aggregates of a kind that match, newest first."""
        found = self.all(kind, matches)
        found.sort(key=order, reverse=True)
        start = (page - 1) * page_size
        return Page(found[start : start + page_size], len(found), page, page_size)


@dataclass(frozen=True)
class IssueFilter:
    """What `GET /issues` filters by; None means any."""

    offices: frozenset[str] | None = None
    status: str | None = None
    category: str | None = None
    community: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    key_problem: bool | None = None
    title_holds: str | None = None

    def __call__(self, issue: Issue) -> bool:
        day = china_day(issue.submitted_at)
        return (
            (self.offices is None or issue.office in self.offices)
            and (self.status is None or issue.status == self.status)
            and (self.category is None or issue.category == self.category)
            and (
                self.community is None or self.community in (issue.community, issue.liaison_station)
            )
            and (self.date_from is None or day >= self.date_from)
            and (self.date_to is None or day <= self.date_to)
            and (self.key_problem is None or issue.key_problem == self.key_problem)
            and (self.title_holds is None or self.title_holds.casefold() in issue.title.casefold())
        )


@dataclass(frozen=True)
class ActivityFilter:
    """What `GET /activities` filters by; None means any."""

    offices: frozenset[str] | None = None
    community: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    def __call__(self, activity: OutreachActivity) -> bool:
        day = china_day(activity.held_at)
        return (
            (self.offices is None or activity.office in self.offices)
            and (
                self.community is None
                or self.community in (activity.community, activity.liaison_station)
            )
            and (self.date_from is None or day >= self.date_from)
            and (self.date_to is None or day <= self.date_to)
        )
