"""The Issue aggregate's rules (问题和建议), on plain aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from services.intake.activity import OutreachActivity
from services.intake.domain import (
    Issue,
    issue_id_for,
)
from services.intake.rules import CLOCK_SKEW, IssueRuleBroken

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


def test_same_record_ignores_surrounding_blanks_and_the_time_zone_of_the_instant() -> None:
    issue = submit()
    same_instant = datetime(2020, 6, 4, 7, 30, tzinfo=UTC)

    again = submit(
        title=" 小区路灯损坏 ",
        description="建工街道三个小区的路灯坏了两个月 ",
        submitted_at=same_instant,
    )

    assert issue.same_record(again)


@pytest.mark.parametrize(
    "changed",
    [
        {"office": "tumen"},
        {"title": "另一个问题"},
        {"description": "另一段描述"},
        {"category": "交通出行"},
        {"submitted_at": datetime(2020, 6, 4, 15, 31, tzinfo=BEIJING)},
        {"community": "进学社区"},
        {"source": "hotline"},
        {"key_problem": True},
        {"reporter_phone": "13800000000"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_same_record_is_false_when_any_field_differs(changed: dict[str, object]) -> None:
    assert not submit().same_record(submit(**changed))


@pytest.mark.parametrize("source", ["radio", "OUTREACH", ""])
def test_refuses_an_unknown_source(source: str) -> None:
    assert refused_field(source=source) == "source"


@pytest.mark.parametrize("phone", ["call me", "12", "138-0000-0000-0000-0000-1"])
def test_refuses_a_reporter_phone_that_is_no_phone_number(phone: str) -> None:
    assert refused_field(reporter_phone=phone) == "reporter_phone"


def test_refuses_an_activity_of_another_office() -> None:
    activity = OutreachActivity.record(
        uuid4(), "tumen", NOW, ["张三"], now=NOW, community="向上社区"
    )
    assert refused_field(activity=activity) == "activity_id"


def test_refuses_a_category_outside_the_offices_own_list() -> None:
    assert refused_field(category="城市管理", categories=("供暖",)) == "category"
    assert submit(category="供暖", categories=("供暖",)).category == "供暖"


def test_records_the_optional_fields_and_links_the_activity() -> None:
    activity = OutreachActivity.record(
        uuid4(), "yanji", NOW, ["张三"], now=NOW, community="进学社区"
    )
    issue = submit(
        community=" 进学社区 ",
        liaison_station="进学街道联络站",
        source="outreach",
        activity=activity,
        recorded_by="张三",
        key_problem=True,
        reporter_name="王女士",
        reporter_phone="138 0000 0000",
    )

    assert (issue.community, issue.source, issue.activity_id) == (
        "进学社区",
        "outreach",
        activity.id,
    )
    assert (issue.key_problem, issue.reporter_phone, issue.status) == (
        True,
        "138 0000 0000",
        "submitted",
    )
