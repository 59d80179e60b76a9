"""An issue's life (问题的状态): screening, resolution, closing, reopening, on plain aggregates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.intake.domain import Issue
from services.intake.rules import CLOCK_SKEW, IssueRuleBroken, TransitionRefused

SUBMITTED = datetime(2020, 6, 4, 7, 30, tzinfo=UTC)
SCREENED = datetime(2020, 6, 11, 7, 0, tzinfo=UTC)  # 15:00 in China
NOW = datetime(2020, 12, 1, tzinfo=UTC)


def issue(office: str = "yanji", **changes: Any) -> Issue:
    fields: dict[str, Any] = {
        "issue_id": uuid4(),
        "office": office,
        "title": "小区路灯损坏",
        "description": "路灯坏了两个月",
        "category": "城市管理",
        "submitted_at": SUBMITTED,
        "now": NOW,
        "key_problem": True,
    }
    fields.update(changes)
    return Issue.submit(**fields)


def screen(target: Issue, decision: str, **changes: Any) -> None:
    fields: dict[str, Any] = {
        "screened_at": SCREENED,
        "screened_by": "leader-1",
        "now": NOW,
    }
    fields.update(changes)
    target.screen(decision, **fields)


def event_names(target: Issue) -> list[str]:
    return [type(e).__name__ for e in target.collect_events()]


@pytest.mark.parametrize(
    ("decision", "fields", "status"),
    [
        ("topic", {}, "topic"),
        ("report", {"report_title": "关于老旧小区照明的社情民意"}, "report"),
        ("refer", {"department": "市住建局", "deadline": date(2020, 7, 11)}, "referred"),
        ("rejected", {"reason": "不属于政协职能"}, "rejected"),
    ],
)
def test_each_decision_moves_the_issue_to_its_status(
    decision: str, fields: dict[str, Any], status: str
) -> None:
    target = issue()
    screen(target, decision, **fields)

    assert target.status == status
    assert target.screening is not None
    assert target.screening["decision"] == decision
    assert event_names(target) == ["Submitted", "Screened"]


def test_an_answered_issue_is_screened_then_resolved_on_the_spot() -> None:
    target = issue()
    screen(target, "answered", answer="社区已当场联系维修")

    assert (target.status, target.resolved_via, target.resolved_at) == (
        "resolved",
        "answered",
        SCREENED,
    )
    assert event_names(target) == ["Submitted", "Screened", "Resolved"]


@pytest.mark.parametrize(
    ("decision", "missing"),
    [
        ("report", "report_title"),
        ("refer", "department"),
        ("answered", "answer"),
        ("rejected", "reason"),
        ("duplicate", "duplicate_of"),
    ],
)
def test_a_decision_without_what_it_needs_is_refused_naming_the_field(
    decision: str, missing: str
) -> None:
    target = issue()
    fields = {"department": "市住建局"} if decision == "refer" else {}
    if missing == "department":
        fields = {"deadline": date(2020, 7, 1)}
    with pytest.raises(IssueRuleBroken) as caught:
        screen(target, decision, **fields)
    assert caught.value.field == missing
    assert target.status == "submitted"


def test_a_referral_needs_a_deadline_not_before_the_screening_day() -> None:
    target = issue()
    with pytest.raises(IssueRuleBroken) as caught:
        screen(target, "refer", department="市住建局", deadline=date(2020, 6, 10))
    assert caught.value.field == "deadline"
    with pytest.raises(IssueRuleBroken, match="deadline"):
        screen(target, "refer", department="市住建局")

    screen(target, "refer", department="市住建局", deadline=date(2020, 6, 11))
    assert target.status == "referred"


def test_screening_before_the_submission_or_in_the_future_is_refused() -> None:
    with pytest.raises(IssueRuleBroken, match="screened_at"):
        screen(issue(), "topic", screened_at=SUBMITTED - timedelta(minutes=1))
    with pytest.raises(IssueRuleBroken, match="screened_at"):
        screen(issue(), "topic", screened_at=NOW + CLOCK_SKEW + timedelta(seconds=1))


def test_screening_twice_is_refused_naming_the_current_status() -> None:
    target = issue()
    screen(target, "topic")
    with pytest.raises(TransitionRefused) as caught:
        screen(target, "rejected", reason="重复")
    assert caught.value.status == "topic"
    assert "topic" in caught.value.reason


def test_an_issue_cannot_duplicate_itself_or_another_offices_issue() -> None:
    target = issue()
    with pytest.raises(IssueRuleBroken, match="duplicate_of"):
        screen(target, "duplicate", duplicate_of=target)
    with pytest.raises(IssueRuleBroken, match="another office"):
        screen(target, "duplicate", duplicate_of=issue(office="tumen"))
    assert target.status == "submitted"


def test_a_duplicate_of_a_duplicate_is_refused() -> None:
    original, first, second = issue(), issue(), issue()
    screen(first, "duplicate", duplicate_of=original)
    with pytest.raises(IssueRuleBroken, match="itself a duplicate"):
        screen(second, "duplicate", duplicate_of=first)


def test_a_duplicate_follows_its_original_when_the_original_is_resolved() -> None:
    original, duplicate = issue(), issue()
    screen(duplicate, "duplicate", duplicate_of=original)
    original.link_duplicate(duplicate)
    case_id = uuid4()

    assert original.resolve_by_case(case_id, NOW)
    assert duplicate.follow_original(original)

    assert duplicate.status == "resolved"
    assert duplicate.resolved_via == "original"
    assert original.duplicates == [duplicate.id]
    resolved = duplicate.collect_events()[-1]
    assert isinstance(resolved, Issue.Resolved)
    assert (resolved.original_id, resolved.resolved_at) == (original.id, NOW)


def test_a_duplicate_of_an_already_resolved_issue_is_resolved_at_once() -> None:
    original, duplicate = issue(), issue()
    screen(original, "answered", answer="已解决")
    screen(duplicate, "duplicate", duplicate_of=original)

    assert duplicate.status == "resolved"
    assert event_names(duplicate) == ["Submitted", "Screened", "Resolved"]


def test_a_case_resolves_a_screened_issue_once_and_names_the_case() -> None:
    target = issue()
    screen(target, "refer", department="市住建局", deadline=date(2020, 7, 1))
    case_id = uuid4()

    assert target.resolve_by_case(case_id, NOW)
    assert not target.resolve_by_case(case_id, NOW)
    assert not target.resolve_by_case(uuid4(), NOW)

    assert target.resolving_cases == [case_id]
    assert event_names(target) == ["Submitted", "Screened", "Resolved"]


@pytest.mark.parametrize(
    ("decision", "fields"),
    [("rejected", {"reason": "不予采纳"}), ("duplicate", {"duplicate_of": issue()})],
)
def test_a_rejected_or_duplicate_issue_cannot_be_resolved_by_a_case(
    decision: str, fields: dict[str, Any]
) -> None:
    target = issue()
    screen(target, decision, **fields)
    with pytest.raises(TransitionRefused) as caught:
        target.resolve_by_case(uuid4(), NOW)
    assert caught.value.status == decision


def test_only_a_resolved_issue_is_closed() -> None:
    target = issue()
    with pytest.raises(TransitionRefused) as caught:
        target.close(NOW, NOW)
    assert caught.value.status == "submitted"
    screen(target, "topic")
    with pytest.raises(TransitionRefused):
        target.close(NOW, NOW)

    target.resolve_by_case(uuid4(), SCREENED)
    with pytest.raises(IssueRuleBroken, match="closed_at"):
        target.close(SCREENED - timedelta(seconds=1), NOW)
    target.close(NOW, NOW)
    assert (target.status, target.closed_at) == ("closed", NOW)
    with pytest.raises(TransitionRefused):
        target.close(NOW, NOW)


def test_a_reopened_issue_awaits_screening_and_can_be_screened_again() -> None:
    target = issue()
    screen(target, "answered", answer="已答复")
    target.close(NOW, NOW)
    with pytest.raises(IssueRuleBroken, match="reason"):
        target.reopen("  ", NOW, NOW)

    target.reopen("居民反映问题复发", NOW, NOW)
    assert (target.status, target.screening, target.closed_at) == ("submitted", None, None)

    screen(target, "refer", department="市城管局", deadline=date(2020, 12, 31), screened_at=NOW)
    assert target.status == "referred"
    assert event_names(target)[-2:] == ["Reopened", "Screened"]


def test_only_a_closed_issue_is_reopened() -> None:
    target = issue()
    screen(target, "answered", answer="已答复")
    with pytest.raises(TransitionRefused) as caught:
        target.reopen("复发", NOW, NOW)
    assert caught.value.status == "resolved"


def test_a_case_verified_again_after_a_reopen_changes_nothing() -> None:
    target = issue()
    screen(target, "refer", department="市住建局", deadline=date(2020, 7, 1))
    case_id = uuid4()
    target.resolve_by_case(case_id, SCREENED)
    target.close(NOW, NOW)
    target.reopen("复发", NOW, NOW)

    assert not target.resolve_by_case(case_id, NOW)
    assert target.status == "submitted"
