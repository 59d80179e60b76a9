"""Tracking codes (查询码): what a resident keeps to look up the public status of an issue.

A code is an HMAC of the issue's id under intake's secret: 128 random-looking bits that
nobody can guess or derive from an id, yet the same for a retried submission, so the answer
to a retry carries the code the first answer did. The catalog keeps each issue's code beside
its row (services/intake/catalog.py), so a code is looked up in the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any
from uuid import UUID

from services.intake.domain import DECISIONS, Issue
from shared.clock import CHINA

DECISION_WORDS = {
    "topic": "列为协商议题，将提交协商会议 / taken up as a topic for a consultation meeting",
    "report": "作为社情民意报送党委政府 / forwarded to the party committee and government",
    "refer": "转交承办单位办理 / referred to the department in charge",
    "answered": "当场答复解决 / answered on the spot",
    "duplicate": "与已收到的同一问题合并办理 / merged with the same problem raised before",
    "rejected": "不予采纳 / not taken up",
}
assert set(DECISION_WORDS) == set(DECISIONS)


class TrackingCodes:
    """Derives an issue's code from its id."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def code_of(self, issue_id: UUID) -> str:
        digest = hmac.new(self._secret, issue_id.bytes, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _moment(value: Any) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return str(moment.astimezone(CHINA).isoformat(timespec="minutes"))


def public_timeline(issue: Issue, events: list[Any]) -> list[dict[str, Any]]:
    """The steps a resident may see, from the issue's stored events: no person, no note
    written for the office, nothing of another issue."""
    steps: list[dict[str, Any]] = []
    for e in events:
        if isinstance(e, Issue.Submitted):
            steps.append(_step("received", e.submitted_at, "已收到 / received"))
        elif isinstance(e, Issue.Screened):
            steps.append(_step("screened", e.screened_at, DECISION_WORDS[e.decision]))
        elif isinstance(e, Issue.AgendaNoted):
            steps.append(_agenda_step(e))
        elif isinstance(e, Issue.AgendaLeft):
            words = f"已移出「{e.title}」议题 / taken off the agenda of “{e.title}”"
            steps.append(_step("off_agenda", e.removed_at, words, meeting=e.title))
        elif isinstance(e, Issue.CaseNoted):
            steps.append(_case_step(e))
        elif isinstance(e, Issue.Resolved):
            steps.append(_step("resolved", e.resolved_at, "已解决 / resolved"))
        elif isinstance(e, Issue.Closed):
            steps.append(_step("closed", e.closed_at, "已办结 / closed"))
        elif isinstance(e, Issue.Reopened):
            steps.append(_step("reopened", e.reopened_at, "重新办理 / reopened"))
        elif isinstance(e, Issue.CallbackRecorded) and e.satisfaction == "unsatisfied":
            steps.append(_step("reopened", e.called_at, "回访不满意，重新办理 / reopened"))
    return steps


def _step(step: str, at: Any, words: str, **more: Any) -> dict[str, Any]:
    return {"step": step, "at": _moment(at), "text": words, **more}


def _agenda_step(e: Any) -> dict[str, Any]:
    day = e.starts_at.astimezone(CHINA).date()
    words = (
        f"列入{day.year}年{day.month}月{day.day}日召开的「{e.title}」议题 / on the agenda of "
        f"“{e.title}”, held on {day.isoformat()}"
    )
    return _step("on_agenda", e.added_at, words, meeting=e.title, meeting_date=day.isoformat())


def _case_step(e: Any) -> dict[str, Any]:
    deadline = None if e.deadline is None else e.deadline.isoformat()
    if e.step == "opened":
        words = (
            "经协商会议形成意见建议，交承办单位办理 / the meeting's recommendation went to the "
            "department"
            if e.meeting_id is not None
            else "承办单位开始办理 / the department took it up"
        )
        return _step("department", e.at, words, department=e.department, deadline=deadline)
    if e.step == "completed":
        return _step("completed", e.at, "承办单位报告办结 / the department reported it done")
    return _step(
        "sent_back", e.at, "退回承办单位重办 / sent back to the department", deadline=deadline
    )
