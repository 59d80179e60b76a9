"""What every aggregate of meetings shares (协商会议的共同规则): the Meeting (domain.py), the
topics and schedules it takes and books (bookings.py), the reference data (reference.py). The
two refusals and the stable ids. Pure, no I/O."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5


class MeetingRuleBroken(ValueError):
    """A request whose field breaks a rule (answered 422); names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MeetingConflict(Exception):
    """A command the current state refuses (answered 409); the reason names the state."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def stable_id(*parts: object) -> UUID:
    return uuid5(NAMESPACE_URL, "shangliang:meetings:" + ":".join(str(p) for p in parts))
