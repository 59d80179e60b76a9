"""Group commit (批量提交): many requests in one transaction, a conflict only for its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import IntegrityError

from services.intake.application import IntakeApplication
from services.intake.domain import Issue, issue_id_for

NOW = datetime(2021, 1, 1, tzinfo=UTC)


def new_issue(key: str) -> Issue:
    return Issue.submit(
        issue_id_for("yanji", key),
        "yanji",
        f"问题 {key}",
        "描述",
        "城市管理",
        datetime(2020, 6, 4, tzinfo=UTC),
        now=NOW,
    )


async def queued(app: IntakeApplication, issues: list[Issue]) -> list[asyncio.Task[None]]:
    """Queue every save before the group commit runs, so that they form one batch."""
    tasks = [asyncio.create_task(app.group_commit.save(issue)) for issue in issues]
    await asyncio.sleep(0)  # let every task put its request on the queue
    return tasks


@pytest.fixture
def app() -> IntakeApplication:
    return IntakeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


async def test_concurrent_requests_are_saved_in_one_transaction(app: IntakeApplication) -> None:
    transactions: list[int] = []
    app.saved_listeners.append(lambda: transactions.append(1))
    saves = await queued(app, [new_issue(str(n)) for n in range(10)])

    runner = asyncio.create_task(app.group_commit.run())
    try:
        await asyncio.wait_for(asyncio.gather(*saves), 5)
    finally:
        runner.cancel()

    assert len(transactions) == 1
    assert app.recorder.max_notification_id() == 10


async def test_a_conflict_in_a_batch_fails_only_its_own_request(app: IntakeApplication) -> None:
    app.save(new_issue("taken"))
    others = [new_issue("a"), new_issue("b"), new_issue("c")]
    saves = await queued(app, [others[0], new_issue("taken"), others[1], others[2]])

    runner = asyncio.create_task(app.group_commit.run())
    try:
        outcomes = await asyncio.wait_for(asyncio.gather(*saves, return_exceptions=True), 5)
    finally:
        runner.cancel()

    assert outcomes[0] is None and outcomes[2] is None and outcomes[3] is None
    assert isinstance(outcomes[1], IntegrityError)
    assert app.recorder.max_notification_id() == 4
    for issue in others:
        assert app.repository.get(issue.id).title == issue.title


async def test_a_request_alone_that_conflicts_gets_the_error(app: IntakeApplication) -> None:
    app.save(new_issue("taken"))
    runner = asyncio.create_task(app.group_commit.run())
    try:
        with pytest.raises(IntegrityError):
            await asyncio.wait_for(app.group_commit.save(new_issue("taken")), 5)
    finally:
        runner.cancel()
    assert app.recorder.max_notification_id() == 1


async def test_a_request_that_went_away_does_not_stop_the_others(app: IntakeApplication) -> None:
    gone, kept = await queued(app, [new_issue("gone"), new_issue("kept")])
    gone.cancel()

    runner = asyncio.create_task(app.group_commit.run())
    try:
        await asyncio.wait_for(kept, 5)
        after = await queued(app, [new_issue("after")])
        await asyncio.wait_for(after[0], 5)
    finally:
        runner.cancel()

    assert app.repository.get(issue_id_for("yanji", "after")).version == 1
