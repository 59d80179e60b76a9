"""Commands (命令): what every service's writes share — the fingerprint of a request, the
Idempotency-Key it came with (幂等), and the retry of a command that lost a race with a
concurrent change of the same aggregates (并发重试).

A command loads its aggregates, decides, and saves; the event store refuses the save with
eventsourcing's `IntegrityError` when another writer (a request, a consumer, a replica, the
scheduler) stored a new version of one of them in between. Nothing was stored then, so the
command is decided again on what is stored now. The answer a retried request gets is kept on
the aggregates themselves (each service's `domain.py`), next to the change it caused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from pydantic import BaseModel

T = TypeVar("T")

CONFLICT_RETRIES = 8
"""How many times a command is decided again after a concurrent change refused its save.
Each conflict means another writer got through, so a handful is plenty for the aggregates
requests share now and then; an aggregate that many writers share at once (supervision's
letter register) passes its own count."""

Command = tuple[str, str] | None
"""A request's Idempotency-Key and fingerprint; None for a request sent without a key."""

Decision = tuple[T, Sequence[Aggregate]]
"""What a command decided: its answer, and the aggregates whose new events to store."""

KEY_REUSED = (
    "Idempotency-Key 已用于另一个不同的请求 / this Idempotency-Key was already used for a "
    "different request"
)


class IdempotencyConflict(ValueError):
    """幂等键冲突: the Idempotency-Key was used before for a different request (answered 409)."""


def fingerprint(*parts: Any, digits: int = 64) -> str:
    """What a request asked for, to tell a retry from another request with the same key: the
    SHA-256 of its parts as JSON with sorted keys (a mapping's order does not count), in
    `digits` hex digits. Stored with the change it caused, so a service keeps its length."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def body_fingerprint(action: str, body: BaseModel) -> str:
    """The fingerprint of an action and its request body as the client set it (pydantic's
    JSON without the unset fields: leaving a field out is another request than sending its
    default). Supervision's cases hold these, so it is not folded into `fingerprint`."""
    payload = f"{action}:{body.model_dump_json(exclude_unset=True)}"
    return hashlib.sha256(payload.encode()).hexdigest()


def command_of(idempotency_key: str | None, *parts: Any, digits: int = 64) -> Command:
    """The request's key with the fingerprint of `parts`; None without a key."""
    if idempotency_key is None:
        return None
    return idempotency_key, fingerprint(*parts, digits=digits)


def body_command(idempotency_key: str | None, action: str, body: BaseModel) -> Command:
    """The request's key with the fingerprint of its body; None without a key."""
    return None if idempotency_key is None else (idempotency_key, body_fingerprint(action, body))


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]], retries: int = CONFLICT_RETRIES
) -> T:
    """Run `attempt` (load, decide, save) again each time the store refuses its save for a
    concurrent change, at once and up to `retries` times; then the last refusal is raised."""
    for _ in range(retries):
        try:
            return await attempt()
        except IntegrityError:
            continue
    return await attempt()


def retry_on_conflict_sync(attempt: Callable[[], T], retries: int = CONFLICT_RETRIES) -> T:
    """`retry_on_conflict` for a command that runs in one thread (consumers, the scheduler)."""
    for _ in range(retries):
        try:
            return attempt()
        except IntegrityError:
            continue
    return attempt()


async def decide_and_save(
    save: Callable[..., Awaitable[object]],
    decide: Callable[[], Decision[T]],
    retries: int = CONFLICT_RETRIES,
) -> T:
    """Decide on freshly loaded aggregates (in a worker thread: it reads the store) and store
    what changed atomically with `save` (a service's group commit); a concurrent change is
    decided again (`retry_on_conflict`). A decision that changed nothing saves nothing."""

    async def attempt() -> T:
        answer, changed = await asyncio.to_thread(decide)
        if any(a.pending_events for a in changed):
            await save(*changed)
        return answer

    return await retry_on_conflict(attempt, retries)
