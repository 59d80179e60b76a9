"""Intake's domain (问题收集): pure aggregates, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

DEFAULT_CATEGORIES = (
    "城市管理",
    "物业管理",
    "生态环境",
    "校园周边",
    "交通出行",
    "民生保障",
    "其他",
)
CLOCK_SKEW = timedelta(minutes=5)


class IssueRuleBroken(ValueError):
    """A command that the issue's rules refuse; names the field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def issue_id_for(office: str, idempotency_key: str | None) -> UUID:
    """A retried submission with the same key maps to the same issue, so it cannot duplicate."""
    if idempotency_key is None:
        return uuid4()
    return uuid5(NAMESPACE_URL, f"shangliang:intake:{office}:{idempotency_key}")


class Issue(Aggregate):
    """问题和建议: a problem or suggestion collected from residents."""

    id: UUID  # given on creation: see issue_id_for

    @event("Submitted")
    def __init__(
        self,
        office: str,
        title: str,
        description: str,
        category: str,
        submitted_at: datetime,
    ) -> None:
        self.office = office
        self.title = title
        self.description = description
        self.category = category
        self.submitted_at = submitted_at

    @classmethod
    def submit(
        cls,
        issue_id: UUID,
        office: str,
        title: str,
        description: str,
        category: str,
        submitted_at: datetime,
        now: datetime,
        categories: tuple[str, ...] = DEFAULT_CATEGORIES,
    ) -> Issue:
        """Record an issue, checking what the submission must satisfy."""
        if not title.strip():
            raise IssueRuleBroken("title", "标题不能为空 / the title must not be blank")
        if not description.strip():
            raise IssueRuleBroken("description", "描述不能为空 / the description must not be blank")
        if category not in categories:
            raise IssueRuleBroken(
                "category",
                f"未知类别 / unknown category {category!r}; choose one of {', '.join(categories)}",
            )
        if submitted_at.tzinfo is None:
            raise IssueRuleBroken("submitted_at", "需要时区 / a time zone is required")
        if submitted_at > now.astimezone(UTC) + CLOCK_SKEW:
            raise IssueRuleBroken(
                "submitted_at", "收集时间不能在将来 / the submission time is in the future"
            )
        return cls(
            id=issue_id,
            office=office,
            title=title.strip(),
            description=description.strip(),
            category=category,
            submitted_at=submitted_at,
        )

    def same_submission(
        self, office: str, title: str, description: str, category: str, submitted_at: datetime
    ) -> bool:
        """Whether a retried request asks for exactly what this issue already records."""
        return (self.office, self.title, self.description, self.category, self.submitted_at) == (
            office,
            title.strip(),
            description.strip(),
            category,
            submitted_at,
        )
