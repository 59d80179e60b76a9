"""Audit (审计留痕): every stored event remembers who caused it, and an aggregate's history
shows who did what and when.

The actor travels beside the event, not through the domain: commands stay as they are, and
the actor is bound to the new events when the command hands them over for saving. That is
in the request's own task; the group commit writes them later in its own thread, where the
request is long out of reach. The stored state keeps it under one extra key that the mapper
takes off again, so aggregates never see it and events stored before it load unchanged.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from pydantic import BaseModel

from shared.contracts import Actor
from shared.observability import request_id

AUDIT_KEY = "_audit"

acting: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("acting", default=None)
"""Who the current request acts as; set when its token is checked and its role required."""

_NOT_HISTORY = frozenset({"originator_id", "originator_version", "originator_topic", "timestamp"})


def actor_of(
    subject: str,
    office: str | None,
    roles: Iterable[str] = (),
    role: str | None = None,
    department: str | None = None,
) -> Actor:
    """An actor of the current request (its id, when there is one, for the ops team)."""
    return Actor(
        subject=subject,
        office=office,
        role=role,
        roles=sorted(roles),
        department=department,
        request_id=request_id.get(),
    )


def system_actor(process: str, office: str | None = None, request: str | None = None) -> Actor:
    """A service's own process, e.g. `system:scheduler` or `system:supervision` (events of
    that upstream); `request` is the id of the request that set it going, by default the
    current request's (a scan a supervisor asked for), if any."""
    return Actor(
        subject=f"system:{process}",
        office=office,
        role="system",
        request_id=request or request_id.get(),
    )


def stamp(events: Iterable[DomainEventProtocol[UUID]], actor: Actor | None) -> None:
    """Bind the actor to new events, which the mapper then stores with them.

    An event already stamped keeps its actor; with no actor the event is stored as before
    (who unknown).
    """
    if actor is None:
        return
    record = actor.model_dump(exclude_none=True, exclude_defaults=True)
    for event in events:
        if AUDIT_KEY not in vars(event):
            # Events are frozen dataclasses; the mapper stores whatever is in their __dict__.
            object.__setattr__(event, AUDIT_KEY, record)


class AuditedMapper(Mapper[UUID]):
    """Stores an event's actor with its state; takes it off again when loading."""

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        domain_event = super().to_domain_event(stored_event)
        # The event's __dict__ is the decoded state itself: without the key the event is
        # exactly as it was before auditing existed.
        vars(domain_event).pop(AUDIT_KEY, None)
        return domain_event

    def to_audited_event(
        self, stored_event: StoredEvent
    ) -> tuple[DomainEventProtocol[UUID], Actor | None]:
        domain_event = super().to_domain_event(stored_event)
        record = vars(domain_event).pop(AUDIT_KEY, None)
        return domain_event, None if record is None else Actor.model_validate(record)


def audited_event(
    mapper: Mapper[Any], stored_event: StoredEvent
) -> tuple[DomainEventProtocol[Any], Actor | None]:
    """A stored event and its actor, from any application's mapper (None: not audited)."""
    if isinstance(mapper, AuditedMapper):
        return mapper.to_audited_event(stored_event)
    return mapper.to_domain_event(stored_event), None


class HistoryEntry(BaseModel):
    """One stored event of an aggregate: what, when it was stored, who, and its fields."""

    version: int
    event: str
    recorded_at: datetime
    actor: Actor | None
    """None for events stored before auditing began: who is unknown."""
    data: dict[str, Any]


class History(BaseModel):
    """An aggregate's full history (变更记录), oldest first."""

    id: UUID
    office: str
    entries: list[HistoryEntry]


def read_history(
    application: Application[UUID],
    aggregate_id: UUID,
    hidden: frozenset[str] = frozenset(),
    skipped: frozenset[str] = frozenset(),
) -> list[HistoryEntry]:
    """Every stored event of an aggregate in order, with its actor; `hidden` fields are left
    out of the data, events of a `skipped` type left out altogether."""
    entries = []
    for stored_event in application.recorder.select_events(aggregate_id):
        domain_event, actor = audited_event(application.mapper, stored_event)
        name = type(domain_event).__name__
        if name in skipped:
            continue
        fields = vars(domain_event)
        entries.append(
            HistoryEntry(
                version=domain_event.originator_version,
                event=name,
                recorded_at=domain_event.timestamp,
                actor=actor,
                data={k: v for k, v in fields.items() if k not in _NOT_HISTORY | hidden},
            )
        )
    return entries
