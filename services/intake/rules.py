"""The rules both of intake's aggregates keep (问题收集的共同规则), `Issue` (domain.py) and
`OutreachActivity` (activity.py): the two refusals, recorded moments and texts, comparing a
retried record, and the requests a change remembers. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.domain import Aggregate

CLOCK_SKEW = timedelta(minutes=5)


class IssueRuleBroken(ValueError):
    """A command that the rules refuse for a bad field (422); names the field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TransitionRefused(Exception):
    """A command that the aggregate's current state does not allow (409); names that state."""

    def __init__(self, reason: str, status: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def check_moment(
    field: str, moment: datetime, now: datetime, after: datetime | None = None
) -> None:
    """A recorded moment has a time zone, is not in the future, and follows what it answers."""
    if moment.tzinfo is None:
        raise IssueRuleBroken(field, "需要时区 / a time zone is required")
    if moment > now.astimezone(UTC) + CLOCK_SKEW:
        raise IssueRuleBroken(field, "时间不能在将来 / the time is in the future")
    if after is not None and moment < after:
        raise IssueRuleBroken(
            field, f"时间早于 {after.isoformat()} / the time is before {after.isoformat()}"
        )


def cleaned_text(field: str, value: str | None, what: str, required: bool = True) -> str | None:
    stripped = (value or "").strip()
    if not stripped:
        if required:
            raise IssueRuleBroken(field, f"{what}不能为空 / the {field} must not be blank")
        return None
    return stripped


def field_values(aggregate: Aggregate, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(aggregate, name) for name in names)


def remember_command(aggregate: Any, command: tuple[str, str] | None) -> None:
    """Keep the Idempotency-Key of the request that caused a change, with its fingerprint."""
    if command is not None:
        aggregate.commands[command[0]] = command[1]


def previous_command(aggregate: Any, command: tuple[str, str] | None) -> bool:
    """True if this request was already applied; a reused key with another body is refused."""
    if command is None or command[0] not in aggregate.commands:
        return False
    if aggregate.commands[command[0]] != command[1]:
        raise TransitionRefused(
            "Idempotency-Key 已用于另一个不同的请求 / this Idempotency-Key was already used "
            "for a different request",
            getattr(aggregate, "status", "recorded"),
        )
    return True
