"""MeetingsApplication: topics from intake, bookings under concurrency, retries, contracts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from services.meetings.application import MeetingNotFound, MeetingsApplication
from services.meetings.bookings import AcceptedTopic
from services.meetings.consumers import intake_policy
from services.meetings.domain import outcome_id_for
from services.meetings.publishing import to_contract
from services.meetings.rules import MeetingConflict, MeetingRuleBroken
from shared.clock import CHINA
from shared.consumer import Delivered
from shared.contracts import (
    Envelope,
    IssueReopenedV1,
    IssueScreenedV1,
    MeetingConcludedV1,
    MeetingHeldV1,
    ScreeningDecision,
)
from shared.process import UpstreamProcessor
from shared.settings import Settings
from tests.support.serving import serving

START = datetime(2020, 7, 16, 14, 30, tzinfo=CHINA)
END = START + timedelta(hours=2)
POSTPONED_AT = START - timedelta(days=10)
"""Postponements are recorded in 2020 too: a new window cannot precede its postponement."""
HALL = "延吉市政协委员协商议事厅"


@pytest.fixture
async def app() -> AsyncIterator[MeetingsApplication]:
    """Meetings in memory with Yanji's reference data, its group commit running."""
    meetings = MeetingsApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, offices=Settings().offices
    )
    async with serving(meetings):
        for department in ("住建局", "城管局"):
            await meetings.record_department("yanji", department)
        await meetings.record_venue("yanji", HALL, "延吉市")
        for n in range(1, 4):
            await meetings.record_person("yanji", f"m{n}", f"委员{n}", "member", None)
        await meetings.record_person("yanbian", "e1", "朴专家", "expert", None)
        yield meetings


class Intake:
    """Intake's stream as meetings consumes it: numbered messages through the processor."""

    def __init__(self, app: MeetingsApplication) -> None:
        self.processor = UpstreamProcessor(app, intake_policy(app))
        self.sequence = 0

    def deliver(self, *contracts: Any, again: int = 0) -> None:
        """Apply these events in order; `again` re-delivers that many of them once more."""
        batch = []
        for contract in contracts:
            self.sequence += 1
            envelope = Envelope.wrap(
                str(uuid4()), datetime.now(UTC), contract.subject(contract.office), contract
            )
            batch.append(Delivered(self.sequence, envelope, contract))
        self.processor.apply(batch, Tracking("INTAKE", self.sequence))
        if again:
            self.processor.apply(batch[-again:], Tracking("INTAKE", self.sequence))


def screened(
    issue_id: UUID, decision: ScreeningDecision = "topic", office: str = "yanji"
) -> IssueScreenedV1:
    return IssueScreenedV1(
        issue_id=issue_id,
        office=office,
        decision=decision,
        screened_at=START - timedelta(days=20),
        screened_by="leader",
        title="无物业小区楼道灯损坏",
        category="物业管理",
    )


async def plan(app: MeetingsApplication, **changes: Any):
    fields: dict[str, Any] = {
        "office": "yanji",
        "joint_offices": [],
        "kind": "thematic",
        "title": "无物业小区管理专题协商会",
        "theme": "老旧小区无物业管理",
        "starts_at": START,
        "ends_at": END,
        "venue": HALL,
        "submission_deadline": None,
        "planned_at": START - timedelta(days=14),
    }
    fields.update(changes)
    meeting, _ = await app.plan_meeting(**fields)
    return meeting


async def test_an_issue_intake_has_not_accepted_is_refused_until_its_topic_decision_arrives(
    app: MeetingsApplication,
) -> None:
    meeting, issue = await plan(app), uuid4()
    intake = Intake(app)
    intake.deliver(screened(issue, "report"))
    stored = app.recorder.max_notification_id()

    with pytest.raises(MeetingConflict, match="not accepted"):
        await app.add_topic(meeting.id, issue, None, None)
    assert app.recorder.max_notification_id() == stored

    intake.deliver(screened(issue))
    added, _ = await app.add_topic(meeting.id, issue, None, None)
    assert list(added.topics) == [str(issue)]


async def test_a_redelivered_decision_changes_nothing_and_a_reopening_withdraws_the_topic(
    app: MeetingsApplication,
) -> None:
    issue, intake = uuid4(), Intake(app)
    intake.deliver(screened(issue), again=1)
    topic = app.accepted_topic(issue)
    assert topic is not None and topic.version == 1

    intake.deliver(
        IssueReopenedV1(issue_id=issue, office="yanji", reopened_at=START, reason="复发"), again=1
    )
    withdrawn = app.accepted_topic(issue)
    assert withdrawn is not None and not withdrawn.accepted and withdrawn.version == 2
    with pytest.raises(MeetingConflict, match="no longer"):
        await app.add_topic((await plan(app)).id, issue, None, None)

    intake.deliver(screened(issue))
    again = app.accepted_topic(issue)
    assert again is not None and again.accepted


async def test_two_meetings_adding_one_issue_at_once_cannot_both_win(
    app: MeetingsApplication,
) -> None:
    issue = uuid4()
    Intake(app).deliver(screened(issue))
    meetings = [
        await plan(app, venue=None, kind="written", submission_deadline=END + timedelta(days=5))
        for _ in range(4)
    ]

    outcomes = await asyncio.gather(
        *[app.add_topic(m.id, issue, None, None) for m in meetings], return_exceptions=True
    )

    won = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(won) == 1
    assert all(isinstance(o, MeetingConflict) for o in outcomes if o not in won)
    holder = app.accepted_topic(issue)
    assert holder is not None and holder.meeting_id == won[0][0].id
    assert sum(str(issue) in app.get_meeting(m.id).topics for m in meetings) == 1


async def test_one_person_invited_to_overlapping_meetings_at_once_gets_one_and_a_named_conflict(
    app: MeetingsApplication,
) -> None:
    first = await plan(app, title="第一场")
    await app.record_venue("yanji", "河南街道现场", None)
    second = await plan(app, title="第二场", kind="onsite", venue="河南街道现场")

    outcomes = await asyncio.gather(
        app.invite(first.id, "m1", None, None),
        app.invite(second.id, "m1", None, None),
        return_exceptions=True,
    )

    refused = [o for o in outcomes if isinstance(o, MeetingConflict)]
    assert len(refused) == 1
    winner = first if isinstance(outcomes[1], MeetingConflict) else second
    assert winner.title in refused[0].reason and str(winner.id) in refused[0].reason
    invited = [m.id for m in (first, second) if "m1" in app.get_meeting(m.id).invitations]
    assert invited == [winner.id]


async def test_a_booked_venue_is_refused_until_the_other_meeting_is_cancelled(
    app: MeetingsApplication,
) -> None:
    issue = uuid4()
    Intake(app).deliver(screened(issue))
    first = await plan(app, title="先定的会")
    await app.add_topic(first.id, issue, None, None)
    await app.invite(first.id, "m1", None, None)

    with pytest.raises(MeetingConflict, match="先定的会"):
        await plan(
            app,
            title="后定的会",
            starts_at=START + timedelta(hours=1),
            ends_at=END + timedelta(hours=1),
        )
    await app.cancel(first.id, "与全委会冲突", START - timedelta(days=1), None)
    second = await plan(app, title="后定的会")
    moved, _ = await app.add_topic(second.id, issue, None, None)
    invited, _ = await app.invite(second.id, "m1", None, None)

    assert str(issue) in moved.topics and "m1" in invited.invitations


async def test_a_postponement_rebooks_and_is_refused_when_the_new_window_is_taken(
    app: MeetingsApplication,
) -> None:
    first = await plan(app, title="第一场")
    await app.invite(first.id, "m1", None, None)
    later = START + timedelta(days=7)
    await app.record_venue("yanji", "现场", None)
    second = await plan(
        app,
        title="第二场",
        kind="onsite",
        venue="现场",
        starts_at=later,
        ends_at=later + timedelta(hours=2),
    )
    await app.invite(second.id, "m1", None, None)
    before = app.recorder.max_notification_id()

    with pytest.raises(MeetingConflict, match="第二场"):
        await app.postpone(
            first.id, later, later + timedelta(hours=1), None, "改期", POSTPONED_AT, None
        )
    assert app.recorder.max_notification_id() == before

    moved, _ = await app.postpone(
        first.id,
        START + timedelta(days=1),
        END + timedelta(days=1),
        None,
        "改期",
        POSTPONED_AT,
        None,
    )
    assert moved.sequence == 1 and moved.postponements[0]["from_starts_at"] == START
    third = await plan(app, title="第三场")  # the hall's old slot is free again
    assert third.venue == HALL


async def test_a_retried_command_is_carried_out_once(app: MeetingsApplication) -> None:
    meeting = await plan(app)
    first, done = await app.invite(meeting.id, "m1", "host", "key-1")
    again, done_again = await app.invite(meeting.id, "m1", "host", "key-1")

    assert done and not done_again and again.version == first.version
    with pytest.raises(MeetingConflict, match="Idempotency-Key"):
        await app.invite(meeting.id, "m2", "member", "key-1")


async def test_a_retried_plan_returns_the_same_meeting_and_another_body_conflicts(
    app: MeetingsApplication,
) -> None:
    first, created = await app.plan_meeting(
        "yanji", [], "thematic", "会", "主题", START, END, HALL, None, START, "plan-1"
    )
    again, created_again = await app.plan_meeting(
        "yanji", [], "thematic", "会", "主题", START, END, HALL, None, START, "plan-1"
    )
    assert created and not created_again and again.id == first.id
    with pytest.raises(MeetingConflict, match="Idempotency-Key"):
        await app.plan_meeting(
            "yanji", [], "thematic", "另一个会", "主题", START, END, HALL, None, START, "plan-1"
        )


async def test_an_unknown_participant_is_refused_and_nothing_is_stored(
    app: MeetingsApplication,
) -> None:
    meeting = await plan(app)
    before = app.recorder.max_notification_id()
    with pytest.raises(MeetingRuleBroken) as refused:
        await app.invite(meeting.id, "nobody", None, None)
    assert refused.value.field == "person_id"
    assert app.recorder.max_notification_id() == before


async def test_the_prefecture_joint_meeting_takes_county_topics_and_the_expert_panel(
    app: MeetingsApplication,
) -> None:
    yanji_issue, tumen_issue = uuid4(), uuid4()
    Intake(app).deliver(screened(yanji_issue), screened(tumen_issue, office="tumen"))
    joint = await plan(app, office="yanbian", joint_offices=["yanji"])

    await app.add_topic(joint.id, yanji_issue, None, None)
    await app.invite(joint.id, "e1", None, None)
    await app.invite(joint.id, "m1", None, None)
    with pytest.raises(MeetingRuleBroken, match="tumen"):
        await app.add_topic(joint.id, tumen_issue, None, None)

    stored = app.get_meeting(joint.id)
    assert stored.invitations["e1"]["office"] == "yanbian"
    assert stored.invitations["e1"]["role"] == "expert"


async def test_concluding_publishes_outcomes_and_frees_the_topics(app: MeetingsApplication) -> None:
    issue = uuid4()
    Intake(app).deliver(screened(issue))
    meeting = await plan(app)
    await app.add_topic(meeting.id, issue, START - timedelta(days=2), None)
    await app.invite(meeting.id, "m1", None, None)
    await app.invite(meeting.id, "m2", "host", None)
    await app.reply(meeting.id, "m2", False, None)
    await app.hold(meeting.id, START, ["m1"], None)
    outcome = {
        "issue_ids": [issue],
        "recommendation": "建立无物业小区托管机制",
        "department": "住建局",
        "deadline": date(2020, 10, 31),
    }
    concluded, _ = await app.conclude(meeting.id, END, [outcome], None)

    events = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(1, 1000)]
    published = [c for e in events if (t := to_contract(e)) for c in [t[1]]]
    held = next(c for c in published if isinstance(c, MeetingHeldV1))
    final = next(c for c in published if isinstance(c, MeetingConcludedV1))
    assert [a.person_id for a in held.attendance] == ["m1"] and held.issue_ids == [issue]
    assert final.outcomes[0].outcome_id == outcome_id_for(meeting.id, 0)
    assert final.outcomes[0].issue_ids == [issue] and final.offices == ["yanji"]
    freed = app.accepted_topic(issue)
    assert isinstance(freed, AcceptedTopic) and freed.meeting_id is None
    assert concluded.status == "concluded"
    with pytest.raises(MeetingNotFound):  # another aggregate's id is no meeting
        app.get_meeting(freed.id)


async def test_meetings_are_listed_for_the_offices_that_may_read_them(
    app: MeetingsApplication,
) -> None:
    yanji = await plan(app)
    joint = await plan(
        app,
        office="yanbian",
        joint_offices=["yanji"],
        kind="written",
        venue=None,
        submission_deadline=END + timedelta(days=3),
    )
    await app.record_venue("tumen", "图们会场", None)
    tumen = await plan(app, office="tumen", venue="图们会场")

    def ids(meetings: list[Any]) -> set[UUID]:
        return {m.id for m in meetings}

    assert ids(app.meetings(lambda o: o == "yanji")) == {yanji.id, joint.id}
    assert ids(app.meetings(lambda o: True)) == {yanji.id, joint.id, tumen.id}
    assert ids(app.meetings(lambda o: True, kind="written")) == {joint.id}
    assert ids(app.meetings(lambda o: True, office="tumen")) == {tumen.id}
    assert app.meetings(lambda o: True, date_from=date(2021, 1, 1)) == []


async def test_every_meeting_event_is_published_under_the_organising_office(
    app: MeetingsApplication,
) -> None:
    issue = uuid4()
    Intake(app).deliver(screened(issue))
    joint = await plan(app, office="yanbian", joint_offices=["yanji"])
    await app.add_topic(joint.id, issue, None, None)
    await app.remove_topic(joint.id, issue, None, None)
    await app.postpone(
        joint.id,
        START + timedelta(days=1),
        END + timedelta(days=1),
        None,
        "改期",
        POSTPONED_AT,
        None,
    )
    await app.cancel(joint.id, "取消", None, None)

    events = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(1, 1000)]
    published = [t for e in events if e.originator_id == joint.id and (t := to_contract(e))]

    assert [type(c).__name__ for _, c in published] == [
        "MeetingPlannedV1",
        "TopicAddedV1",
        "TopicRemovedV1",
        "MeetingPostponedV1",
        "MeetingCancelledV1",
    ]
    assert {office for office, _ in published} == {"yanbian"}
    assert all(c.offices == ["yanbian", "yanji"] for _, c in published)  # type: ignore[attr-defined]
    assert published[2][1].issue_office == "yanji"  # type: ignore[attr-defined]
    added = published[1][1]
    # The meeting as a resident's public timeline names it (intake follows MEETINGS for it).
    assert (added.meeting_title, added.starts_at) == (joint.title, joint.starts_at)  # type: ignore[attr-defined]
    assert to_contract(events[0]) is None  # reference data stays inside the service


async def test_a_written_consultation_takes_nobodys_time_slot(app: MeetingsApplication) -> None:
    thematic = await plan(app)
    written = await plan(
        app, kind="written", venue=None, submission_deadline=END + timedelta(days=3)
    )
    await app.invite(thematic.id, "m1", None, None)

    invited, _ = await app.invite(written.id, "m1", None, None)

    assert "m1" in invited.invitations
