"""The meeting's rules (协商会议), on the pure aggregates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.meetings.bookings import AcceptedTopic, Schedule
from services.meetings.domain import (
    Meeting,
    outcome_id_for,
)
from services.meetings.reference import Roster
from services.meetings.rules import MeetingConflict, MeetingRuleBroken
from shared.clock import CHINA

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
START = datetime(2020, 7, 16, 14, 30, tzinfo=CHINA)
END = START + timedelta(hours=2)
OFFICES = ["yanbian", "yanji", "tumen"]
HALL = "延吉市政协委员协商议事厅"


def plan(kind: str = "thematic", **changes: Any) -> Meeting:
    fields: dict[str, Any] = {
        "meeting_id": uuid4(),
        "office": "yanji",
        "joint_offices": [],
        "kind": kind,
        "title": "无物业小区管理专题协商会",
        "theme": "老旧小区无物业管理问题",
        "starts_at": START,
        "ends_at": END,
        "venue": None if kind == "written" else HALL,
        "submission_deadline": END + timedelta(days=7) if kind == "written" else None,
        "planned_at": START - timedelta(days=14),
        "now": NOW,
        "known_offices": OFFICES,
        "known_venues": {HALL},
    }
    fields.update(changes)
    return Meeting.plan(**fields)


def topic(office: str = "yanji") -> AcceptedTopic:
    return AcceptedTopic.accept(
        uuid4(), office, "楼道灯损坏", "物业管理", False, START - timedelta(days=20)
    )


def person(person_id: str, name: str = "金明", office: str = "yanji") -> dict[str, Any]:
    return {"person_id": person_id, "office": office, "name": name, "kind": "member"}


def outcome(issue_id: UUID, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "issue_ids": [issue_id],
        "recommendation": "建立无物业小区托管机制",
        "department": "住建局",
        "deadline": date(2020, 10, 31),
    }
    fields.update(changes)
    return fields


def held_meeting() -> tuple[Meeting, AcceptedTopic]:
    meeting = plan()
    accepted = topic()
    meeting.add_topic(accepted, START - timedelta(days=3), NOW)
    meeting.invite(person("m1"), "member", None)
    meeting.hold(START, ["m1"], NOW)
    return meeting, accepted


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(MeetingRuleBroken) as refused:
        plan(ends_at=START - timedelta(minutes=1))
    assert refused.value.field == "ends_at"


def test_a_written_consultation_needs_a_future_deadline_and_no_venue() -> None:
    with pytest.raises(MeetingRuleBroken) as no_deadline:
        plan("written", submission_deadline=None)
    with pytest.raises(MeetingRuleBroken) as past:
        plan("written", submission_deadline=START - timedelta(days=30))
    with pytest.raises(MeetingRuleBroken) as venue:
        plan("written", venue=HALL)
    assert [e.value.field for e in (no_deadline, past, venue)] == [
        "submission_deadline",
        "submission_deadline",
        "venue",
    ]
    assert "过" in past.value.reason and "past" in past.value.reason


def test_a_meeting_in_a_hall_needs_a_registered_venue() -> None:
    with pytest.raises(MeetingRuleBroken, match="venue"):
        plan(venue=None)
    with pytest.raises(MeetingRuleBroken, match="unknown venue"):
        plan(venue="不存在的会场")


def test_joint_offices_must_be_known_and_distinct() -> None:
    with pytest.raises(MeetingRuleBroken, match="unknown office"):
        plan(office="yanbian", joint_offices=["atlantis"])
    with pytest.raises(MeetingRuleBroken, match="more than once"):
        plan(office="yanbian", joint_offices=["yanji", "yanji"])
    assert plan(office="yanbian", joint_offices=["yanji"]).offices == ["yanbian", "yanji"]


def test_a_recorded_happening_may_be_back_dated_but_not_in_the_future() -> None:
    with pytest.raises(MeetingRuleBroken) as refused:
        plan(planned_at=NOW + timedelta(hours=1))
    assert refused.value.field == "planned_at"
    meeting = plan()
    meeting.invite(person("m1"), "member", None)
    with pytest.raises(MeetingRuleBroken) as held:
        meeting.hold(NOW + timedelta(days=1), ["m1"], NOW)
    assert held.value.field == "held_at"


def test_a_topic_of_another_office_is_refused_unless_that_office_holds_the_meeting() -> None:
    with pytest.raises(MeetingRuleBroken, match="tumen"):
        plan().add_topic(topic("tumen"), START, NOW)
    joint = plan(office="yanbian", joint_offices=["yanji"])
    accepted = topic("yanji")

    joint.add_topic(accepted, START, NOW)

    assert list(joint.topics) == [str(accepted.issue_id)]
    assert accepted.meeting_id == joint.id


def test_an_issue_is_on_one_open_meeting_at_a_time_until_removed() -> None:
    first, second, accepted = plan(), plan(), topic()
    first.add_topic(accepted, START, NOW)

    with pytest.raises(MeetingConflict) as taken:
        second.add_topic(accepted, START, NOW)
    assert first.title in taken.value.reason and str(first.id) in taken.value.reason

    first.remove_topic(accepted, START, NOW)
    second.add_topic(accepted, START, NOW)
    assert accepted.meeting_id == second.id


def test_an_issue_intake_no_longer_holds_a_topic_cannot_be_added() -> None:
    accepted = topic()
    accepted.withdraw("reopened", START)
    with pytest.raises(MeetingConflict, match="no longer"):
        plan().add_topic(accepted, START, NOW)


def test_overlapping_bookings_conflict_and_name_the_other_meeting() -> None:
    schedule = Schedule.open("person", "yanji", "m1")
    first, second, later = (
        plan(),
        plan(title="另一个会"),
        plan(starts_at=END, ends_at=END + (END - START)),
    )
    first.invite(person("m1"), "member", schedule)

    with pytest.raises(MeetingConflict) as refused:
        second.invite(person("m1"), "member", schedule)
    later.invite(person("m1"), "member", schedule)  # back to back is no overlap

    assert first.title in refused.value.reason and str(first.id) in refused.value.reason
    assert set(schedule.bookings) == {str(first.id), str(later.id)}
    assert "m1" not in second.invitations


def test_a_decline_frees_the_persons_time() -> None:
    schedule = Schedule.open("person", "yanji", "m1")
    first, second = plan(), plan()
    first.invite(person("m1"), "member", schedule)
    first.reply("m1", False, schedule)

    second.invite(person("m1"), "expert", schedule)

    assert first.invitations["m1"]["reply"] == "declined"
    assert list(schedule.bookings) == [str(second.id)]


def test_only_invited_people_who_did_not_decline_attend() -> None:
    meeting = plan()
    meeting.invite(person("m1"), "member", None)
    meeting.invite(person("m2", "李华"), "expert", None)
    meeting.reply("m2", False, None)

    for stranger in (["m1", "m2"], ["m1", "m9"]):
        with pytest.raises(MeetingRuleBroken) as refused:
            meeting.hold(START, stranger, NOW)
        assert refused.value.field == "attendance"
    meeting.hold(START, ["m1"], NOW)

    assert meeting.status == "held"
    assert meeting.attendance == [{"person_id": "m1", "name": "金明", "role": "member"}]


def test_concluding_needs_a_held_meeting_and_at_least_one_outcome() -> None:
    meeting = plan()
    accepted = topic()
    meeting.add_topic(accepted, START, NOW)
    with pytest.raises(MeetingConflict, match="not been held"):
        meeting.conclude(END, [outcome(accepted.issue_id)], NOW, {"住建局"})
    meeting.invite(person("m1"), "member", None)
    meeting.hold(START, ["m1"], NOW)
    with pytest.raises(MeetingRuleBroken) as none:
        meeting.conclude(END, [], NOW, {"住建局"})
    assert none.value.field == "outcomes"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"deadline": date(2020, 7, 16)}, "outcomes.0.deadline"),
        ({"department": "不存在局"}, "outcomes.0.department"),
        ({"issue_ids": [uuid4()]}, "outcomes.0.issue_ids"),
        ({"recommendation": "  "}, "outcomes.0.recommendation"),
    ],
)
def test_each_outcome_answers_agenda_issues_with_a_known_department_and_a_later_deadline(
    change: dict[str, Any], field: str
) -> None:
    meeting, accepted = held_meeting()
    with pytest.raises(MeetingRuleBroken) as refused:
        meeting.conclude(END, [outcome(accepted.issue_id, **change)], NOW, {"住建局"})
    assert refused.value.field == field
    assert meeting.status == "held"


def test_outcomes_get_deterministic_ids() -> None:
    meeting, accepted = held_meeting()
    meeting.conclude(
        END,
        [outcome(accepted.issue_id), outcome(accepted.issue_id, department="城管局")],
        NOW,
        {"住建局", "城管局"},
    )
    assert meeting.status == "concluded"
    assert [o["outcome_id"] for o in meeting.outcomes] == [
        outcome_id_for(meeting.id, 0),
        outcome_id_for(meeting.id, 1),
    ]
    assert outcome_id_for(meeting.id, 0) == outcome_id_for(meeting.id, 0)


def test_a_written_consultation_takes_opinions_until_its_deadline_then_closes() -> None:
    meeting = plan("written")
    deadline = meeting.submission_deadline
    assert deadline is not None
    meeting.invite(person("e1", "朴专家"), "expert", None)
    meeting.invite(person("m1"), "member", None)
    meeting.receive_opinion("e1", "建议分类施策", START + timedelta(days=1), NOW)

    with pytest.raises(MeetingConflict, match="deadline"):
        meeting.receive_opinion("m1", "迟到的意见", deadline + timedelta(minutes=1), NOW)
    with pytest.raises(MeetingRuleBroken):
        meeting.receive_opinion("x9", "陌生人的意见", START, NOW)
    meeting.close(START + timedelta(days=2), NOW)

    assert meeting.status == "held"
    assert [a["person_id"] for a in meeting.attendance] == ["e1"]
    with pytest.raises(MeetingConflict, match="held"):
        meeting.receive_opinion("m1", "又一份", START + timedelta(days=2), NOW)


def test_a_written_consultation_concludes_only_after_its_deadline_or_closing() -> None:
    early = plan(
        "written",
        starts_at=NOW + timedelta(days=1),
        ends_at=NOW + timedelta(days=2),
        submission_deadline=NOW + timedelta(days=3),
        planned_at=NOW,
    )
    accepted = topic()
    early.add_topic(accepted, NOW, NOW)
    with pytest.raises(MeetingConflict, match="not been held"):
        early.conclude(
            NOW, [outcome(accepted.issue_id, deadline=date(2027, 1, 31))], NOW, {"住建局"}
        )

    past = plan("written")
    other = topic()
    past.add_topic(other, START, NOW)
    past.conclude(NOW, [outcome(other.issue_id, deadline=date(2027, 1, 31))], NOW, {"住建局"})
    assert past.status == "concluded"
    assert past.held_at == past.submission_deadline


def test_a_cancelled_meeting_cannot_be_changed_and_says_so() -> None:
    meeting = plan()
    meeting.cancel("台风", START - timedelta(days=1), NOW)
    for change in (
        lambda: meeting.add_topic(topic(), START, NOW),
        lambda: meeting.invite(person("m1"), "member", None),
        lambda: meeting.postpone(START, END, None, "再议", START, NOW),
        lambda: meeting.cancel("again", START, NOW),
    ):
        with pytest.raises(MeetingConflict) as refused:
            change()
        assert "cancelled" in refused.value.reason and "已取消" in refused.value.reason
    assert meeting.sequence == 1


def test_a_postponement_keeps_the_old_window_and_bumps_the_sequence() -> None:
    meeting = plan()
    later = START + timedelta(days=7)
    meeting.postpone(later, later + timedelta(hours=2), None, "主要领导出差", START, NOW)

    assert (meeting.starts_at, meeting.sequence) == (later, 1)
    assert meeting.postponements[0]["from_starts_at"] == START
    with pytest.raises(MeetingRuleBroken):
        meeting.postpone(later, later - timedelta(hours=1), None, "错", START, NOW)
    assert meeting.same_plan(
        ["yanji"], "thematic", meeting.title, meeting.theme, START, END, HALL, None
    )


def test_a_remembered_request_is_recognised_and_another_with_its_key_refused() -> None:
    meeting = plan()
    meeting.remember("k1", "fingerprint-a")
    assert meeting.answered_before("k1", "fingerprint-a")
    assert not meeting.answered_before("k2", "fingerprint-a")
    with pytest.raises(MeetingConflict, match="Idempotency-Key"):
        meeting.answered_before("k1", "fingerprint-b")


def test_the_roster_keeps_people_venues_and_departments_with_their_history() -> None:
    roster = Roster.open("yanji")
    roster.record_department("住建局")
    head, new = roster.record_person("h1", "张局长", "department_head", "住建局")
    _, again = roster.record_person("h1", "张局长", "department_head", "住建局")
    roster.record_person("h1", "张新局长", "department_head", "住建局")

    assert new and not again and head["office"] == "yanji"
    assert roster.people["h1"]["name"] == "张新局长"
    assert len(roster.collect_events()) == 4  # opened, department, person, renamed
    with pytest.raises(MeetingRuleBroken, match="department"):
        roster.record_person("h2", "王局长", "department_head", "不存在局")
    with pytest.raises(MeetingRuleBroken, match="kind"):
        roster.record_person("x", "某人", "astronaut", None)


def test_a_recorded_step_cannot_precede_the_step_it_follows() -> None:
    with pytest.raises(MeetingRuleBroken) as refused:
        plan(planned_at=START + timedelta(days=1))
    assert refused.value.field == "starts_at" and "计划时间" in refused.value.reason

    meeting = plan()
    before_planning = START - timedelta(days=15)
    screened_later = AcceptedTopic.accept(uuid4(), "yanji", "路灯", "城市管理", False, START)
    for add, field in (
        (lambda: meeting.add_topic(topic(), before_planning, NOW), "added_at"),
        (lambda: meeting.add_topic(screened_later, START - timedelta(days=3), NOW), "added_at"),
    ):
        with pytest.raises(MeetingRuleBroken) as refused:
            add()
        assert refused.value.field == field
    assert meeting.topics == {}

    meeting.invite(person("m1"), "member", None)
    for held_at in (before_planning, START - timedelta(days=1)):
        with pytest.raises(MeetingRuleBroken) as refused:
            meeting.hold(held_at, ["m1"], NOW)
        assert refused.value.field == "held_at"
    with pytest.raises(MeetingRuleBroken) as refused:
        meeting.postpone(START, END, None, "改期", START + timedelta(days=1), NOW)
    assert refused.value.field == "starts_at"
    assert meeting.status == "planned" and meeting.starts_at == START

    meeting.hold(START - timedelta(hours=2), ["m1"], NOW)  # earlier the same day is fine
    assert meeting.status == "held"
