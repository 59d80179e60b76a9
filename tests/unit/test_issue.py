"""The Issue aggregate's rules (问题和建议), on plain aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.intake.domain import CLOCK_SKEW, Issue, IssueRuleBroken, issue_id_for

NOW = datetime(2020, 6, 4, 8, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


def submit(**changes: object) -> Issue:
    fields: dict[str, object] = {
        "issue_id": issue_id_for("yanji", "key-1"),
        "office": "yanji",
        "title": "小区路灯损坏",
        "description": "建工街道三个小区的路灯坏了两个月",
        "category": "城市管理",
        "submitted_at": datetime(2020, 6, 4, 15, 30, tzinfo=BEIJING),
        "now": NOW,
    }
    fields.update(changes)
    return Issue.submit(**fields)  # type: ignore[arg-type]


def refused_field(**changes: object) -> str:
    with pytest.raises(IssueRuleBroken) as caught:
        submit(**changes)
    return caught.value.field


@pytest.mark.parametrize("title", ["", "   ", "\t\n"])
def test_refuses_a_blank_title(title: str) -> None:
    assert refused_field(title=title) == "title"


@pytest.mark.parametrize("description", ["", "  "])
def test_refuses_a_blank_description(description: str) -> None:
    assert refused_field(description=description) == "description"


def test_refuses_an_unknown_category() -> None:
    assert refused_field(category="天气") == "category"


def test_refuses_a_submission_time_without_a_time_zone() -> None:
    assert refused_field(submitted_at=datetime(2020, 6, 4, 15, 30)) == "submitted_at"


def test_refuses_a_submission_time_in_the_future() -> None:
    later = NOW + CLOCK_SKEW + timedelta(seconds=1)
    assert refused_field(submitted_at=later) == "submitted_at"


def test_accepts_a_submission_time_within_the_clock_skew() -> None:
    assert submit(submitted_at=NOW + CLOCK_SKEW).submitted_at == NOW + CLOCK_SKEW


def test_the_refusal_names_the_field_in_its_message() -> None:
    with pytest.raises(IssueRuleBroken, match=r"^title: "):
        submit(title=" ")


def test_a_valid_submission_records_every_field() -> None:
    issue_id = issue_id_for("yanji", "key-1")
    issue = submit(title="  小区路灯损坏 ", description=" 路灯坏了 ")

    assert issue.id == issue_id
    assert issue.office == "yanji"
    assert issue.title == "小区路灯损坏"
    assert issue.description == "路灯坏了"
    assert issue.category == "城市管理"
    assert issue.submitted_at == datetime(2020, 6, 4, 15, 30, tzinfo=BEIJING)
    assert issue.version == 1
    (submitted,) = issue.collect_events()
    assert isinstance(submitted, Issue.Submitted)
    assert submitted.originator_id == issue_id
    assert submitted.title == "小区路灯损坏"


def test_issue_id_is_the_same_for_the_same_office_and_key() -> None:
    assert issue_id_for("yanji", "abc") == issue_id_for("yanji", "abc")


def test_issue_id_differs_across_offices_and_keys() -> None:
    ids = {issue_id_for("yanji", "abc"), issue_id_for("tumen", "abc"), issue_id_for("yanji", "x")}
    assert len(ids) == 3


def test_issue_id_without_a_key_is_new_every_time() -> None:
    assert issue_id_for("yanji", None) != issue_id_for("yanji", None)


def test_same_submission_ignores_surrounding_blanks_and_the_time_zone_of_the_instant() -> None:
    issue = submit()
    same_instant = datetime(2020, 6, 4, 7, 30, tzinfo=UTC)

    assert issue.same_submission(
        "yanji", " 小区路灯损坏 ", "建工街道三个小区的路灯坏了两个月 ", "城市管理", same_instant
    )


@pytest.mark.parametrize(
    "changed",
    [
        {"office": "tumen"},
        {"title": "另一个问题"},
        {"description": "另一段描述"},
        {"category": "交通出行"},
        {"submitted_at": datetime(2020, 6, 4, 15, 31, tzinfo=BEIJING)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_same_submission_is_false_when_any_field_differs(changed: dict[str, object]) -> None:
    issue = submit()
    asked: dict[str, object] = {
        "office": issue.office,
        "title": issue.title,
        "description": issue.description,
        "category": issue.category,
        "submitted_at": issue.submitted_at,
    }
    asked.update(changed)
    assert not issue.same_submission(**asked)  # type: ignore[arg-type]
