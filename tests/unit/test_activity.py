"""The OutreachActivity aggregate (委员进基层活动): recorded, corrected, counted in 人次."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.intake.activity import OutreachActivity
from services.intake.domain import (
    activity_id_for,
    issue_id_for,
)
from services.intake.rules import IssueRuleBroken

HELD = datetime(2020, 6, 4, 6, 30, tzinfo=UTC)
NOW = datetime(2020, 12, 1, tzinfo=UTC)


def record(**changes: Any) -> OutreachActivity:
    fields: dict[str, Any] = {
        "activity_id": uuid4(),
        "office": "yanji",
        "held_at": HELD,
        "members": ["张三", "李四", "王五"],
        "now": NOW,
        "community": "进学社区",
        "activity_group": "第三活动小组",
    }
    fields.update(changes)
    return OutreachActivity.record(**fields)


def test_an_activity_counts_each_member_present_as_one_participation() -> None:
    activity = record(members=[" 张三", "李四 ", "王五"], note=" 走访 ")

    assert activity.members == ["张三", "李四", "王五"]
    assert activity.participations == 3
    assert activity.note == "走访"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"members": []}, "members"),
        ({"members": ["张三", " "]}, "members"),
        ({"members": ["张三", "张三"]}, "members"),
        ({"community": None, "liaison_station": "  "}, "community"),
        ({"held_at": datetime(2020, 6, 4, 14, 30)}, "held_at"),
        ({"held_at": NOW + timedelta(hours=1)}, "held_at"),
    ],
    ids=[
        "no member",
        "a blank member",
        "a member twice",
        "no community and no station",
        "no time zone",
        "in the future",
    ],
)
def test_a_bad_record_is_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(IssueRuleBroken) as caught:
        record(**changes)
    assert caught.value.field == field


def test_a_liaison_station_alone_is_enough() -> None:
    activity = record(community=None, liaison_station="进学街道联络站")
    assert (activity.community, activity.liaison_station) == (None, "进学街道联络站")


def test_a_correction_replaces_the_members_and_keeps_the_change() -> None:
    activity = record()
    activity.correct(["张三", "李四", "赵六", "钱七"], "漏记两位委员", NOW, NOW)

    assert activity.participations == 4
    recorded, corrected = activity.collect_events()
    assert isinstance(recorded, OutreachActivity.Recorded)
    assert recorded.members == ["张三", "李四", "王五"]
    assert isinstance(corrected, OutreachActivity.Corrected)
    assert (corrected.members, corrected.reason) == (
        ["张三", "李四", "赵六", "钱七"],
        "漏记两位委员",
    )


@pytest.mark.parametrize(
    ("members", "reason", "at", "field"),
    [
        (["张三", "李四", "王五"], "无变化", NOW, "members"),
        (["张三"], "  ", NOW, "reason"),
        (["张三"], "少记", HELD - timedelta(days=1), "corrected_at"),
    ],
    ids=["the same list", "no reason", "before the activity"],
)
def test_a_bad_correction_is_refused_and_changes_nothing(
    members: list[str], reason: str, at: datetime, field: str
) -> None:
    activity = record()
    with pytest.raises(IssueRuleBroken) as caught:
        activity.correct(members, reason, at, NOW)
    assert caught.value.field == field
    assert activity.participations == 3
    assert len(activity.collect_events()) == 1


def test_activity_ids_are_deterministic_per_office_and_key_and_apart_from_issue_ids() -> None:
    assert activity_id_for("yanji", "k") == activity_id_for("yanji", "k")
    assert activity_id_for("yanji", "k") != activity_id_for("tumen", "k")
    assert activity_id_for("yanji", "k") != issue_id_for("yanji", "k")
