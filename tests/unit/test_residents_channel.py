"""The residents' channel in intake: Open311 requests, what supervision tells about their cases,
tracking codes and the public timeline, and the follow-up call (回访)."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import Tracking
from hypothesis import given
from hypothesis import strategies as st

from services.intake.application import IntakeApplication, resolved_before
from services.intake.consumers import meetings_policy, supervision_policy
from services.intake.open311 import Open311Error, new_api_key, requests_xml, service_request
from services.intake.open311_api import _form_text, _submission
from services.intake.publishing import to_contract
from services.intake.rules import IssueRuleBroken, TransitionRefused
from services.intake.schemas import PublicStatus
from shared.contracts import (
    CaseOpenedV1,
    CaseReopenedV1,
    CaseVerifiedV1,
    CompletionReportedV1,
    Contract,
    Envelope,
    IssueCallbackRecordedV1,
    TopicAddedV1,
    TopicRemovedV1,
)
from shared.process import Upstream
from tools.cli import parser

BEIJING = timezone(timedelta(hours=8))
DEADLINE = datetime.now(BEIJING).date() + timedelta(days=30)
PLACE = {"lat": 42.9, "long": 129.5}


async def request(app: IntakeApplication, key: str = "k1", **changes: Any) -> UUID:
    fields: dict[str, Any] = {
        "office": "yanji",
        "service_code": "城市管理",
        "description": "进学街路灯坏了\n晚上很黑",
        "attributes": {},
        "location": PLACE,
        "media_url": "https://example.org/lamp.jpg",
        "reporter_name": "王 芳",
        "reporter_phone": "13800000000",
        "idempotency_key": key,
    }
    fields.update(changes)
    issue, _ = await app.submit_request(**fields)
    return issue.id


_positions = iter(range(1, 10_000))


def tell(app: IntakeApplication, contract: Contract) -> int:
    """Run intake's policy for the contract's stream on one upstream event; the events it
    stored."""
    stream = contract.service.upper()
    envelope = Envelope.wrap(str(uuid4()), datetime.now(UTC), contract.subject("yanji"), contract)
    upstream = Upstream(stream, next(_positions), envelope, contract)
    processing: ProcessingEvent[UUID] = ProcessingEvent(Tracking(stream, upstream.position))
    policy = meetings_policy(app) if stream == "MEETINGS" else supervision_policy(app)
    policy(upstream, processing)
    app._record(processing)
    return len(processing.events)


def case_story(app: IntakeApplication, issue_id: UUID, case_id: UUID) -> None:
    tell(
        app,
        CaseOpenedV1(
            case_id=case_id,
            office="yanji",
            origin="referral",
            issue_ids=[issue_id],
            department="市住建局",
            deadline=DEADLINE,
            requirements="修路灯",
            opened_at=datetime.now(UTC),
        ),
    )
    tell(
        app,
        CompletionReportedV1(
            case_id=case_id,
            office="yanji",
            department="市住建局",
            note="已更换灯泡",
            reported_at=datetime.now(UTC),
        ),
    )
    tell(
        app,
        CaseVerifiedV1(
            case_id=case_id,
            office="yanji",
            department="市住建局",
            issue_ids=[issue_id],
            verified_at=datetime.now(UTC),
        ),
    )


async def referred(app: IntakeApplication) -> UUID:
    issue_id = await request(app)
    await app.screen_issue(issue_id, "refer", "leader-1", department="市住建局", deadline=DEADLINE)
    return issue_id


async def test_a_key_is_checked_by_its_own_record_without_catching_up_every_issue(
    intake: IntakeApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, record = await intake.issue_open311_key("yanji", "居民小程序")
    await request(intake)  # stored since: the catalog is behind
    monkeypatch.setattr(intake.catalog, "catch_up", lambda: pytest.fail("the catalog caught up"))

    assert intake.office_of_key(key) == "yanji"
    assert intake.office_of_key("not-a-key") is None
    await intake.revoke_open311_key(record.id)
    assert intake.office_of_key(key) is None


async def test_an_open311_request_becomes_an_online_issue_with_place_and_photo_link(
    intake: IntakeApplication,
) -> None:
    issue = intake.get_issue(await request(intake))

    assert (issue.source, issue.category, issue.title) == ("online", "城市管理", "进学街路灯坏了")
    assert issue.location == PLACE
    assert issue.media_url == "https://example.org/lamp.jpg"
    answer = service_request(issue)
    assert answer["status"] == "open"
    assert (answer["lat"], answer["long"]) == (42.9, 129.5)
    assert "王" not in repr(answer) and "13800000000" not in repr(answer)


async def test_a_retried_request_later_is_answered_with_the_first_issue(
    intake: IntakeApplication,
) -> None:
    first = await request(intake)
    again, created = await intake.submit_request(
        "yanji", "城市管理", "进学街路灯坏了\n晚上很黑", {}, PLACE,
        "https://example.org/lamp.jpg", "王 芳", "13800000000", "k1",
    )  # fmt: skip

    assert (again.id, created) == (first, False)
    assert len(intake.service_requests("yanji", None, None, datetime.min.replace(tzinfo=UTC),
                                       datetime.max.replace(tzinfo=UTC), None)) == 1  # fmt: skip


async def test_an_unknown_service_or_a_bad_phone_is_refused_in_open311_terms(
    intake: IntakeApplication,
) -> None:
    with pytest.raises(Open311Error) as unknown:
        await request(intake, service_code="天气")
    with pytest.raises(Open311Error) as phone:
        await request(intake, key="k2", reporter_phone="call me")

    assert unknown.value.code == 404
    assert (phone.value.code, phone.value.description.split(":")[0]) == (400, "phone")
    assert intake.recorder.max_notification_id() in (None, 0)


async def test_required_attributes_are_checked_and_kept_in_the_description() -> None:
    attributes = {
        "yanji": {
            "城市管理": [
                {"code": "lamp", "datatype": "string", "description": "路灯编号", "required": True},
                {"code": "kind", "datatype": "singlevaluelist", "description": "类型",
                 "values": [{"key": "led", "name": "LED"}]},
            ]
        }
    }  # fmt: skip
    app = IntakeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
                            open311_attributes=attributes)  # fmt: skip
    try:
        with pytest.raises(Open311Error, match=r"attribute\[lamp\]"):
            app._attribute_lines("yanji", "城市管理", {})
        with pytest.raises(Open311Error, match=r"attribute\[kind\]"):
            app._attribute_lines("yanji", "城市管理", {"lamp": "7", "kind": "gas"})
        lines = app._attribute_lines("yanji", "城市管理", {"lamp": "7", "kind": "led"})
    finally:
        app.close()

    assert lines == ["路灯编号：7", "类型：LED"]


async def test_supervision_tells_the_department_deadline_and_closure(
    intake: IntakeApplication,
) -> None:
    issue_id = await referred(intake)
    case_id = uuid4()

    case_story(intake, issue_id, case_id)

    answer = service_request(intake.get_issue(issue_id))
    assert answer["status"] == "closed"
    assert answer["agency_responsible"] == "市住建局"
    assert answer["expected_datetime"] == f"{DEADLINE.isoformat()}T23:59:59+08:00"
    assert "已更换灯泡" in answer["status_notes"]
    assert b"<status>closed</status>" in requests_xml([answer])


async def test_a_replayed_supervision_event_changes_nothing(intake: IntakeApplication) -> None:
    issue_id = await referred(intake)
    opened = CaseOpenedV1(
        case_id=uuid4(), office="yanji", origin="referral", issue_ids=[issue_id],
        department="市住建局", deadline=DEADLINE, requirements="修", opened_at=datetime.now(UTC),
    )  # fmt: skip

    assert (tell(intake, opened), tell(intake, opened)) == (1, 0)


async def test_a_tracking_code_shows_the_public_timeline_and_nothing_else(
    intake: IntakeApplication,
) -> None:
    issue_id = await referred(intake)
    case_story(intake, issue_id, uuid4())
    code = intake.tracking_code(intake.get_issue(issue_id))

    found = intake.track(code)

    assert found is not None
    issue, timeline = found
    assert issue.id == issue_id
    assert [s["step"] for s in timeline] == [
        "received", "screened", "department", "completed", "resolved"
    ]  # fmt: skip
    assert "王" not in repr(timeline) and "leader-1" not in repr(timeline)
    assert intake.track(code, office="tumen") is None
    assert intake.track(code[:-1] + ("A" if code[-1] != "A" else "B")) is None
    assert len(code) >= 22


async def test_the_public_timeline_names_the_meeting_whose_agenda_took_the_issue_up(
    intake: IntakeApplication,
) -> None:
    issue_id = await request(intake)
    await intake.screen_issue(issue_id, "topic", "leader-1", reason="内部：与住建局先沟通")
    meeting_id = uuid4()

    def on_the_agenda(issue: UUID) -> dict[str, Any]:
        return {"meeting_id": meeting_id, "offices": ["yanji"], "issue_id": issue,
                "issue_office": "yanji"}  # fmt: skip

    def added(issue: UUID, **more: Any) -> TopicAddedV1:
        return TopicAddedV1(**on_the_agenda(issue), added_at=datetime.now(UTC), **more)

    def removed(issue: UUID) -> TopicRemovedV1:
        return TopicRemovedV1(**on_the_agenda(issue), removed_at=datetime.now(UTC))

    planned = {
        "meeting_title": "老旧小区路灯改造专题协商会",
        "starts_at": datetime(2026, 12, 1, 1, 30, tzinfo=UTC),  # 09:30 on 1 December in China
    }
    assert tell(intake, added(issue_id)) == 0  # published before the meeting travelled with it
    assert tell(intake, added(uuid4(), **planned)) == 0  # an issue of another intake
    assert tell(intake, added(issue_id, **planned)) == 1
    assert tell(intake, added(issue_id, **planned)) == 0  # redelivered

    found = intake.track(intake.tracking_code(intake.get_issue(issue_id)))
    assert found is not None
    timeline = found[1]
    assert [s["step"] for s in timeline] == ["received", "screened", "on_agenda"]
    agenda = timeline[-1]
    assert (agenda["meeting"], agenda["meeting_date"]) == (planned["meeting_title"], "2026-12-01")
    assert "老旧小区路灯改造专题协商会" in agenda["text"] and "2026年12月1日" in agenda["text"]
    assert "内部" not in repr(timeline) and str(meeting_id) not in repr(timeline)
    answered = PublicStatus.of(*found).timeline[-1]  # what GET /track/{code} answers
    assert (answered["meeting"], answered["meeting_date"]) == (agenda["meeting"], "2026-12-01")

    # Taken off the agenda: a step says so, and the same meeting may take it up again.
    assert tell(intake, removed(issue_id)) == 1
    assert tell(intake, removed(issue_id)) == 0  # redelivered
    assert tell(intake, removed(uuid4())) == 0  # an issue of another intake
    assert tell(intake, added(issue_id, **planned)) == 1
    steps = intake.track(intake.tracking_code(intake.get_issue(issue_id)))
    assert steps is not None
    assert [s["step"] for s in steps[1]] == [
        "received", "screened", "on_agenda", "off_agenda", "on_agenda"
    ]  # fmt: skip
    off = steps[1][3]
    assert off["meeting"] == planned["meeting_title"] and "已移出" in off["text"]
    answered = PublicStatus.of(*steps).timeline[3]
    assert answered["step"] == "off_agenda" and answered["meeting"] == off["meeting"]


async def test_a_callback_needs_a_resolved_issue_and_a_satisfaction_when_reached(
    intake: IntakeApplication,
) -> None:
    issue_id = await referred(intake)
    with pytest.raises(TransitionRefused):
        await intake.record_callback(issue_id, True, "satisfied", None, "clerk-1")
    case_story(intake, issue_id, uuid4())
    with pytest.raises(IssueRuleBroken, match="satisfaction"):
        await intake.record_callback(issue_id, True, None, None, "clerk-1")
    with pytest.raises(IssueRuleBroken, match="satisfaction"):
        await intake.record_callback(issue_id, False, "satisfied", None, "clerk-1")

    issue = await intake.record_callback(issue_id, True, "basically_satisfied", "还行", "clerk-1")

    assert issue.status == "resolved"
    assert issue.callbacks[0]["satisfaction"] == "basically_satisfied"


async def test_unsatisfied_reopens_the_issue_and_names_the_cases_to_send_back(
    intake: IntakeApplication,
) -> None:
    issue_id = await referred(intake)
    case_id = uuid4()
    case_story(intake, issue_id, case_id)

    issue = await intake.record_callback(issue_id, True, "unsatisfied", "灯又坏了", "clerk-1")

    assert issue.status == "referred"
    assert service_request(issue)["status"] == "open"
    (_, contract) = to_contract(list(intake.events.get(issue_id))[-1]) or (None, None)
    assert isinstance(contract, IssueCallbackRecordedV1)
    assert contract.reopened_cases == [case_id]
    # Sent back and verified again, the same case resolves the issue once more.
    tell(intake, CaseReopenedV1(case_id=case_id, office="yanji", department="市住建局",
                                reason="回访不满意", deadline=date.today() + timedelta(days=10),
                                reopened_at=datetime.now(UTC)))  # fmt: skip
    tell(intake, CaseVerifiedV1(case_id=case_id, office="yanji", department="市住建局",
                                issue_ids=[issue_id], verified_at=datetime.now(UTC)))  # fmt: skip
    assert intake.get_issue(issue_id).status == "resolved"


async def test_a_resolved_issue_is_due_for_a_callback_after_the_working_days(
    intake: IntakeApplication,
) -> None:
    issue_id = await referred(intake)
    case_story(intake, issue_id, uuid4())

    verified_at = intake.get_issue(issue_id).resolved_at
    assert verified_at is not None
    soon = verified_at + timedelta(days=1)
    later = verified_at + timedelta(days=20)
    assert intake.due_for_callback(frozenset({"yanji"}), soon) == []
    assert [i.id for i in intake.due_for_callback(frozenset({"yanji"}), later)] == [issue_id]
    assert intake.due_for_callback(frozenset({"tumen"}), later) == []
    await intake.record_callback(issue_id, False, None, "无人接听", "clerk-1")
    assert intake.due_for_callback(None, later) == []


def test_working_days_before_follow_the_official_calendar() -> None:
    friday = datetime(2020, 7, 3, 12, 0, tzinfo=BEIJING)

    # 7-2, 7-1, 6-30, 6-29 and Sunday 6-28, the make-up day (调休) for 端午.
    assert resolved_before(friday, 5).date() == date(2020, 6, 28)
    assert resolved_before(friday, 6).date() == date(2020, 6, 24)


TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1)


@given(st.dictionaries(TEXT, TEXT, max_size=8))
def test_the_open311_form_reads_what_a_client_encoded(fields: dict[str, str]) -> None:
    encoded = urllib.parse.urlencode(fields).encode()

    pairs = [p.partition(b"=") for p in encoded.split(b"&") if p]

    assert {_form_text(n): _form_text(v) for n, _, v in pairs} == fields


def test_a_malformed_form_is_refused_in_open311_terms() -> None:
    for raw in (b"description=%ZZ", b"description=%4", b"description=%ED%A0%80", b"a=%FF"):
        with pytest.raises(Open311Error) as refused:
            _submission(raw)
        assert refused.value.code == 400, raw


def test_an_issued_key_can_be_given_back_to_the_command_line() -> None:
    """A bare `token_urlsafe` begins with `-` once in 64 keys, and argparse then took
    `revoke --key -…` for an option (found by the suite on a fresh clone)."""
    keys = [new_api_key() for _ in range(2000)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        arguments = parser().parse_args(
            ["open311", "key", "revoke", "--office", "yanji", "--key", key]
        )
        assert arguments.key == key
