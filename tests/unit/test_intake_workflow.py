"""IntakeApplication's commands after submission: screening, duplicates, the supervision
policy, closing and reopening, lists and the published contracts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import Tracking

from services.intake.application import (
    IdempotencyConflict,
    IntakeApplication,
    IssueNotFound,
)
from services.intake.catalog import ActivityFilter, IssueFilter
from services.intake.consumers import verified_case_policy
from services.intake.publishing import to_contract
from services.intake.rules import IssueRuleBroken, TransitionRefused
from shared.contracts import (
    ActivityCorrectedV1,
    ActivityRecordedV1,
    CaseVerifiedV1,
    Envelope,
    IssueClosedV1,
    IssueReopenedV1,
    IssueResolvedV1,
    IssueScreenedV1,
    IssueSubmittedV1,
)
from shared.process import PolicyRefused, Upstream

BEIJING = timezone(timedelta(hours=8))
AT = datetime(2020, 6, 4, 15, 30, tzinfo=BEIJING)
SCREENED = datetime(2020, 6, 11, 15, 0, tzinfo=BEIJING)


async def submit(app: IntakeApplication, office: str = "yanji", **changes: Any) -> UUID:
    fields: dict[str, Any] = {
        "office": office,
        "title": "小区路灯损坏",
        "description": f"路灯坏了 {uuid4().hex[:6]}",
        "category": "城市管理",
        "submitted_at": AT,
    }
    fields.update(changes)
    issue, _ = await app.submit_issue(**fields)
    return issue.id


async def screen(app: IntakeApplication, issue_id: UUID, decision: str, **fields: Any):
    return await app.screen_issue(
        issue_id, decision, "leader-1", screened_at=fields.pop("at", SCREENED), **fields
    )


def verified(*issue_ids: UUID, case_id: UUID | None = None, sequence: int = 1) -> Upstream:
    contract = CaseVerifiedV1(
        case_id=case_id or uuid4(),
        office="yanji",
        department="市住建局",
        issue_ids=list(issue_ids),
        verified_at=datetime(2020, 8, 1, 10, 0, tzinfo=BEIJING),
    )
    envelope = Envelope.wrap(str(uuid4()), datetime.now(UTC), contract.subject("yanji"), contract)
    return Upstream("SUPERVISION", sequence, envelope, contract)


def apply_policy(app: IntakeApplication, upstream: Upstream) -> int:
    """Run the policy as the processor does; the number of events it stored."""
    processing: ProcessingEvent[UUID] = ProcessingEvent(Tracking("SUPERVISION", upstream.position))
    verified_case_policy(app)(upstream, processing)
    app._record(processing)
    return len(processing.events)


def published(app: IntakeApplication) -> list[Any]:
    notifications = app.recorder.select_notifications(1, 1000)
    found = [to_contract(app.mapper.to_domain_event(n)) for n in notifications]
    return [c for _, c in filter(None, found)]


async def test_a_refer_decision_publishes_what_supervision_needs(
    intake: IntakeApplication,
) -> None:
    issue_id = await submit(intake, key_problem=True)
    issue = await screen(
        intake, issue_id, "refer", department="市住建局", deadline=date(2020, 7, 11)
    )

    assert issue.status == "referred"
    screened = published(intake)[-1]
    assert screened == IssueScreenedV1(
        issue_id=issue_id,
        office="yanji",
        decision="refer",
        screened_at=SCREENED,
        screened_by="leader-1",
        title="小区路灯损坏",
        category="城市管理",
        key_problem=True,
        department="市住建局",
        deadline=date(2020, 7, 11),
    )


async def test_screening_an_issue_twice_is_refused_and_stores_nothing(
    intake: IntakeApplication,
) -> None:
    issue_id = await submit(intake)
    await screen(intake, issue_id, "topic")
    stored = intake.recorder.max_notification_id()

    with pytest.raises(TransitionRefused) as caught:
        await screen(intake, issue_id, "rejected", reason="重复")

    assert caught.value.status == "topic"
    assert intake.recorder.max_notification_id() == stored


async def test_a_retried_screening_with_its_key_returns_the_issue_and_stores_nothing(
    intake: IntakeApplication,
) -> None:
    issue_id = await submit(intake)
    first = await screen(intake, issue_id, "topic", idempotency_key="s-1")
    stored = intake.recorder.max_notification_id()

    again = await screen(intake, issue_id, "topic", idempotency_key="s-1")
    assert (again.id, again.version, again.status) == (first.id, first.version, "topic")
    assert intake.recorder.max_notification_id() == stored

    with pytest.raises(TransitionRefused, match="Idempotency-Key"):
        await screen(intake, issue_id, "rejected", reason="x", idempotency_key="s-1")


async def test_an_answered_original_resolves_its_duplicates(intake: IntakeApplication) -> None:
    original = await submit(intake)
    duplicates = [await submit(intake) for _ in range(2)]
    for duplicate in duplicates:
        marked = await screen(intake, duplicate, "duplicate", duplicate_of=original)
        assert marked.status == "duplicate"
    assert intake.get_issue(original).duplicates == duplicates

    await screen(intake, original, "answered", answer="已当场维修")

    for duplicate in duplicates:
        issue = intake.get_issue(duplicate)
        assert (issue.status, issue.resolved_via) == ("resolved", "original")
    resolved = [c for c in published(intake) if isinstance(c, IssueResolvedV1)]
    assert [(c.issue_id, c.via, c.original_id) for c in resolved] == [
        (original, "answered", None),
        *[(d, "original", original) for d in duplicates],
    ]


@pytest.mark.parametrize("other", ["itself", "another office", "unknown"])
async def test_a_bad_original_is_refused_and_stores_nothing(
    intake: IntakeApplication, other: str
) -> None:
    issue_id = await submit(intake)
    original = {
        "itself": issue_id,
        "another office": await submit(intake, office="tumen"),
        "unknown": uuid4(),
    }[other]
    stored = intake.recorder.max_notification_id()

    with pytest.raises(IssueRuleBroken) as caught:
        await screen(intake, issue_id, "duplicate", duplicate_of=original)

    assert caught.value.field == "duplicate_of"
    assert intake.recorder.max_notification_id() == stored


async def test_a_verified_case_resolves_its_issues_and_their_duplicates_once(
    intake: IntakeApplication,
) -> None:
    referred = await submit(intake)
    await screen(intake, referred, "refer", department="市住建局", deadline=date(2020, 7, 1))
    duplicate = await submit(intake)
    await screen(intake, duplicate, "duplicate", duplicate_of=referred)
    case_id = uuid4()

    assert apply_policy(intake, verified(referred, case_id=case_id, sequence=1)) == 2
    assert apply_policy(intake, verified(referred, case_id=case_id, sequence=2)) == 0

    issue = intake.get_issue(referred)
    assert (issue.status, issue.resolving_cases) == ("resolved", [case_id])
    assert intake.get_issue(duplicate).resolved_via == "original"
    resolved = [c for c in published(intake) if isinstance(c, IssueResolvedV1)]
    assert [(c.via, c.case_id) for c in resolved] == [("case", case_id), ("original", None)]
    assert any(step.get("case_id") == case_id for step in intake.history(referred))


async def test_a_case_that_covers_no_known_issue_is_refused(intake: IntakeApplication) -> None:
    with pytest.raises(PolicyRefused):
        apply_policy(intake, verified(uuid4()))


async def test_a_case_resolves_the_known_issues_and_passes_over_rejected_ones(
    intake: IntakeApplication,
) -> None:
    topic = await submit(intake)
    await screen(intake, topic, "topic")
    rejected = await submit(intake)
    await screen(intake, rejected, "rejected", reason="不属于政协职能")

    assert apply_policy(intake, verified(topic, rejected, uuid4())) == 1
    assert intake.get_issue(topic).status == "resolved"
    assert intake.get_issue(rejected).status == "rejected"


async def test_close_and_reopen_go_through_the_application(intake: IntakeApplication) -> None:
    issue_id = await submit(intake)
    with pytest.raises(TransitionRefused):
        await intake.close_issue(issue_id)
    await screen(intake, issue_id, "answered", answer="已答复")

    closed = await intake.close_issue(issue_id, idempotency_key="c-1")
    again = await intake.close_issue(issue_id, idempotency_key="c-1")
    assert closed.status == again.status == "closed"
    reopened = await intake.reopen_issue(issue_id, "居民反映未修好")
    assert reopened.status == "submitted"
    await screen(intake, issue_id, "topic", at=datetime.now(UTC))

    assert [type(c) for c in published(intake)] == [
        IssueSubmittedV1,
        IssueScreenedV1,
        IssueResolvedV1,
        IssueClosedV1,
        IssueReopenedV1,
        IssueScreenedV1,
    ]
    assert published(intake)[4].reason == "居民反映未修好"


async def test_commands_on_an_unknown_issue_raise_issue_not_found(
    intake: IntakeApplication,
) -> None:
    with pytest.raises(IssueNotFound):
        await intake.close_issue(uuid4())


async def test_an_issue_from_an_activity_needs_an_activity_that_exists(
    intake: IntakeApplication,
) -> None:
    with pytest.raises(IssueRuleBroken) as caught:
        await submit(intake, activity_id=uuid4())
    assert caught.value.field == "activity_id"

    activity, _ = await intake.record_activity("yanji", AT, ["张三", "李四"], community="进学社区")
    issue_id = await submit(intake, activity_id=activity.id, source="outreach")
    assert intake.get_issue(issue_id).activity_id == activity.id


async def test_activities_are_recorded_corrected_and_published_without_personal_data(
    intake: IntakeApplication,
) -> None:
    activity, created = await intake.record_activity(
        "yanji", AT, ["张三", "李四"], community="进学社区", idempotency_key="a-1"
    )
    again, created_again = await intake.record_activity(
        "yanji", AT, ["张三", "李四"], community="进学社区", idempotency_key="a-1"
    )
    assert created and not created_again and again.id == activity.id
    corrected = await intake.correct_activity(activity.id, ["张三", "李四", "王五"], "漏记")
    assert corrected.participations == 3
    # The office retries its first request after the correction: the same record, no conflict.
    retried, created_again = await intake.record_activity(
        "yanji", AT, ["张三", "李四"], community="进学社区", idempotency_key="a-1"
    )
    assert not created_again and retried.participations == 3
    with pytest.raises(IdempotencyConflict):
        await intake.record_activity(
            "yanji", AT, ["张三"], community="进学社区", idempotency_key="a-1"
        )

    await submit(intake, reporter_name="王女士", reporter_phone="13800000000")
    contracts = published(intake)
    assert [type(c) for c in contracts] == [
        ActivityRecordedV1,
        ActivityCorrectedV1,
        IssueSubmittedV1,
    ]
    assert contracts[1].members == ["张三", "李四", "王五"]
    assert "13800000000" not in contracts[2].model_dump_json()
    assert [s["event"] for s in intake.history(activity.id)] == ["Recorded", "Corrected"]


async def test_lists_filter_and_page(intake: IntakeApplication) -> None:
    for n in range(5):
        await submit(
            intake,
            submitted_at=AT + timedelta(days=n),
            community="进学社区" if n % 2 else "建工社区",
            key_problem=n == 4,
        )
    await submit(intake, office="tumen")
    topic = await submit(intake, category="交通出行")
    await screen(intake, topic, "topic")

    yanji = frozenset({"yanji"})
    page = intake.list_issues(IssueFilter(offices=yanji), 1, 4)
    assert (page.total, len(page.items)) == (6, 4)
    assert [i.submitted_at for i in page.items] == sorted(
        (i.submitted_at for i in page.items), reverse=True
    )
    assert intake.list_issues(IssueFilter(offices=yanji), 2, 4).total == 6
    assert len(intake.list_issues(IssueFilter(offices=yanji), 2, 4).items) == 2
    assert intake.list_issues(IssueFilter(community="进学社区"), 1, 50).total == 2
    assert intake.list_issues(IssueFilter(key_problem=True), 1, 50).total == 1
    assert intake.list_issues(IssueFilter(status="topic"), 1, 50).items[0].id == topic
    assert intake.list_issues(IssueFilter(category="交通出行"), 1, 50).total == 1
    window = IssueFilter(date_from=date(2020, 6, 5), date_to=date(2020, 6, 6))
    assert intake.list_issues(window, 1, 50).total == 2
    assert intake.list_issues(IssueFilter(), 1, 50).total == 7

    await intake.record_activity("yanji", AT, ["张三"], liaison_station="进学街道联络站")
    found = intake.list_activities(ActivityFilter(community="进学街道联络站"), 1, 50)
    assert found.total == 1


def test_categories_are_configurable_per_office() -> None:
    app = IntakeApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, categories={"tumen": ["口岸", "其他"]}
    )
    assert app.categories_of("tumen") == ("口岸", "其他")
    assert "城市管理" in app.categories_of("yanji")


async def test_a_leader_flags_a_key_problem_at_screening(intake: IntakeApplication) -> None:
    flagged = await submit(intake)
    unflagged = await submit(intake, key_problem=True)
    kept = await submit(intake, key_problem=True)

    assert (await screen(intake, flagged, "topic", key_problem=True)).key_problem is True
    assert (await screen(intake, unflagged, "topic", key_problem=False)).key_problem is False
    assert (await screen(intake, kept, "topic")).key_problem is True
    screenings = [c for c in published(intake) if isinstance(c, IssueScreenedV1)]
    assert [(c.issue_id, c.key_problem) for c in screenings] == [
        (flagged, True),
        (unflagged, False),
        (kept, True),
    ]
    assert {i.id for i in intake.list_issues(IssueFilter(key_problem=True), 1, 50).items} == {
        flagged,
        kept,
    }
    assert intake.get_issue(flagged).key_problem is True  # rebuilt from the stored events


async def test_a_retried_screening_with_another_key_problem_flag_is_refused(
    intake: IntakeApplication,
) -> None:
    issue_id = await submit(intake)
    await screen(intake, issue_id, "topic", idempotency_key="k-1")
    with pytest.raises(TransitionRefused, match="Idempotency-Key"):
        await screen(intake, issue_id, "topic", key_problem=True, idempotency_key="k-1")
    assert intake.get_issue(issue_id).key_problem is False


async def test_the_list_finds_issues_by_a_part_of_their_title(intake: IntakeApplication) -> None:
    lamp = await submit(intake, title="进学社区路灯损坏")
    await submit(intake, title="道路积水")
    await submit(intake, office="tumen", title="路灯不亮")

    yanji = frozenset({"yanji"})
    found = intake.list_issues(IssueFilter(offices=yanji, title_holds="路灯"), 1, 50)
    assert [i.id for i in found.items] == [lamp]
    assert intake.list_issues(IssueFilter(title_holds="路灯"), 1, 50).total == 2


async def test_a_retried_submission_after_a_screening_changed_the_flag_is_still_a_retry(
    intake: IntakeApplication,
) -> None:
    fields: dict[str, Any] = {
        "office": "yanji",
        "title": "小区路灯损坏",
        "description": "路灯坏了",
        "category": "城市管理",
        "submitted_at": AT,
        "idempotency_key": "sub-1",
    }
    issue, _ = await intake.submit_issue(**fields)
    await screen(intake, issue.id, "topic", key_problem=True)

    again, created = await intake.submit_issue(**fields)
    assert (again.id, created, again.key_problem) == (issue.id, False, True)
