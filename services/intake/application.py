"""Intake's application (问题收集服务): commands and queries over the event store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.intake.domain import DEFAULT_CATEGORIES, Issue, issue_id_for
from shared.contracts import Contract, IssueSubmittedV1
from shared.eventstore import ServiceApplication


class IssueNotFound(LookupError):
    pass


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was used before for a different submission."""


class IntakeApplication(ServiceApplication):
    """问题收集: records issues for offices; its notification log is intake's outbox."""

    name = "intake"

    def get_issue(self, issue_id: UUID) -> Issue:
        try:
            issue: Issue = self.repository.get(issue_id)
        except AggregateNotFoundError:
            raise IssueNotFound(issue_id) from None
        return issue

    async def submit_issue(
        self,
        office: str,
        title: str,
        description: str,
        category: str,
        submitted_at: datetime,
        idempotency_key: str | None = None,
    ) -> tuple[Issue, bool]:
        """Record an issue; returns it and whether it is new (False for a retried request)."""
        issue_id = issue_id_for(office, idempotency_key)

        def previous_submission() -> Issue | None:
            return self._previous_submission(
                issue_id, office, title, description, category, submitted_at
            )

        if idempotency_key is not None:
            existing = await asyncio.to_thread(previous_submission)
            if existing is not None:
                return existing, False
        issue = Issue.submit(
            issue_id,
            office,
            title,
            description,
            category,
            submitted_at,
            now=datetime.now(UTC),
            categories=DEFAULT_CATEGORIES,
        )
        try:
            await self.group_commit.save(issue)
        except IntegrityError:
            # A concurrent retry with the same key won the race.
            existing = await asyncio.to_thread(previous_submission)
            if existing is None:
                raise
            return existing, False
        return issue, True

    def _previous_submission(
        self,
        issue_id: UUID,
        office: str,
        title: str,
        description: str,
        category: str,
        submitted_at: datetime,
    ) -> Issue | None:
        try:
            issue = self.get_issue(issue_id)
        except IssueNotFound:
            return None
        if not issue.same_submission(office, title, description, category, submitted_at):
            raise IdempotencyConflict(issue_id)
        return issue


def to_contract(domain_event: Any) -> tuple[str, Contract] | None:
    """What intake publishes: each stored domain event as its versioned contract."""
    if isinstance(domain_event, Issue.Submitted):
        return domain_event.office, IssueSubmittedV1(
            issue_id=domain_event.originator_id,
            office=domain_event.office,
            title=domain_event.title,
            description=domain_event.description,
            category=domain_event.category,
            submitted_at=domain_event.submitted_at,
        )
    return None
