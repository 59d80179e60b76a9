"""IntakeApplication.submit_issue: issues stored once, however often a request is retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.intake.application import (
    IdempotencyConflict,
    IntakeApplication,
    IssueNotFound,
)
from services.intake.domain import issue_id_for
from services.intake.publishing import to_contract
from services.intake.rules import IssueRuleBroken
from shared.contracts import IssueSubmittedV1

BEIJING = timezone(timedelta(hours=8))
AT = datetime(2020, 6, 4, 15, 30, tzinfo=BEIJING)


async def submit(app: IntakeApplication, key: str | None = "key-1", **changes: object):
    fields: dict[str, object] = {
        "office": "yanji",
        "title": "小区路灯损坏",
        "description": "路灯坏了两个月",
        "category": "城市管理",
        "submitted_at": AT,
    }
    fields.update(changes)
    return await app.submit_issue(**fields, idempotency_key=key)  # type: ignore[arg-type]


async def test_a_new_submission_is_stored_and_can_be_read_back(intake: IntakeApplication) -> None:
    issue, created = await submit(intake, key=None)

    assert created
    assert intake.recorder.max_notification_id() == 1
    stored = intake.get_issue(issue.id)
    assert (stored.office, stored.title, stored.submitted_at) == ("yanji", "小区路灯损坏", AT)


async def test_a_retry_with_the_same_key_returns_the_same_issue_and_stores_nothing(
    intake: IntakeApplication,
) -> None:
    first, first_created = await submit(intake)
    stored_before = intake.recorder.max_notification_id()

    again, again_created = await submit(intake, title=" 小区路灯损坏 ")

    assert first_created and not again_created
    assert again.id == first.id == issue_id_for("yanji", "key-1")
    assert intake.recorder.max_notification_id() == stored_before == 1


async def test_the_same_key_with_a_different_body_is_a_conflict(intake: IntakeApplication) -> None:
    await submit(intake)

    with pytest.raises(IdempotencyConflict):
        await submit(intake, description="另一段描述")
    assert intake.recorder.max_notification_id() == 1


async def test_the_same_key_in_another_office_is_another_issue(intake: IntakeApplication) -> None:
    yanji, _ = await submit(intake, office="yanji")
    tumen, created = await submit(intake, office="tumen")

    assert created
    assert yanji.id != tumen.id
    assert intake.recorder.max_notification_id() == 2


async def test_concurrent_retries_with_one_key_store_exactly_one_issue(
    intake: IntakeApplication,
) -> None:
    results = await asyncio.gather(*[submit(intake) for _ in range(8)])

    assert {issue.id for issue, _ in results} == {issue_id_for("yanji", "key-1")}
    assert [created for _, created in results].count(True) == 1
    assert intake.recorder.max_notification_id() == 1


async def test_concurrent_retries_with_one_key_but_different_bodies_store_one_and_refuse_others(
    intake: IntakeApplication,
) -> None:
    outcomes = await asyncio.gather(
        *[submit(intake, title=f"标题 {n}") for n in range(4)], return_exceptions=True
    )

    stored = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(stored) == 1
    assert all(isinstance(o, IdempotencyConflict) for o in outcomes if o not in stored)
    assert intake.recorder.max_notification_id() == 1


async def test_many_concurrent_submissions_without_keys_are_all_stored(
    intake: IntakeApplication,
) -> None:
    results = await asyncio.gather(*[submit(intake, key=None, title=f"t{n}") for n in range(300)])

    assert len({issue.id for issue, _ in results}) == 300
    assert intake.recorder.max_notification_id() == 300


async def test_a_broken_rule_stores_nothing(intake: IntakeApplication) -> None:
    with pytest.raises(IssueRuleBroken):
        await submit(intake, submitted_at=datetime.now(UTC) + timedelta(days=1))
    assert not intake.recorder.max_notification_id()


def test_reading_an_unknown_issue_raises_issue_not_found() -> None:
    app = IntakeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    with pytest.raises(IssueNotFound):
        app.get_issue(issue_id_for("yanji", "never"))


async def test_a_stored_submission_is_published_as_issue_submitted_v1(
    intake: IntakeApplication,
) -> None:
    issue, _ = await submit(intake, office="tumen")
    (notification,) = intake.recorder.select_notifications(1, 10)

    office, contract = to_contract(intake.mapper.to_domain_event(notification))

    assert office == "tumen"
    assert contract == IssueSubmittedV1(
        issue_id=issue.id,
        office="tumen",
        title="小区路灯损坏",
        description="路灯坏了两个月",
        category="城市管理",
        submitted_at=AT,
    )
