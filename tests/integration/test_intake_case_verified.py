"""Intake follows the SUPERVISION stream: a verified case resolves its issues exactly once,
whatever order, repetition or restart the messages come in (a real nats-server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.intake.application import IntakeApplication
from services.intake.consumers import verified_case_policy
from services.intake.domain import Issue
from shared.consumer import StreamConsumer
from shared.contracts import CaseVerifiedV1, Envelope
from shared.messaging import ensure_stream
from shared.process import UpstreamProcessor
from shared.streams import SUPERVISION_STREAM
from tests.support.intake_store import open_intake
from tests.support.serving import serving
from tests.support.streams import publish_as_relay
from tests.support.waiting import wait_until

SUBMITTED = datetime(2020, 6, 4, 7, 30, tzinfo=UTC)
VERIFIED = datetime(2020, 8, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
async def supervision(nats_client: Client) -> JetStreamContext:
    """JetStream with the SUPERVISION stream, which this worktree's tests fill themselves."""
    js = nats_client.jetstream()
    await ensure_stream(js, SUPERVISION_STREAM)
    return js


@pytest.fixture
async def intake_app(tmp_path: Path) -> AsyncIterator[IntakeApplication]:
    app = open_intake(tmp_path / "intake.sqlite")
    async with serving(app):
        yield app


async def publish_verified(
    js: JetStreamContext, case_id: UUID, *issue_ids: UUID, event_id: str | None = None
) -> int:
    """Put a CaseVerifiedV1 on the stream as supervision's relay would; its stream sequence."""
    contract = CaseVerifiedV1(
        case_id=case_id,
        office="yanji",
        department="市住建局",
        issue_ids=list(issue_ids),
        verified_at=VERIFIED,
    )
    envelope = Envelope.wrap(
        event_id or str(uuid4()), datetime.now(UTC), contract.subject("yanji"), contract
    )
    # Another message id each time: stored again, as after the duplicate window.
    return await publish_as_relay(
        js, contract.subject("yanji"), envelope.to_bytes(), str(uuid4()), None
    )


async def referred_issue(app: IntakeApplication) -> UUID:
    issue, _ = await app.submit_issue("yanji", "路灯损坏", "路灯不亮", "城市管理", SUBMITTED)
    await app.screen_issue(
        issue.id,
        "refer",
        "leader-1",
        screened_at=SUBMITTED + timedelta(days=7),
        department="市住建局",
        deadline=date(2020, 7, 31),
    )
    return issue.id


async def follow(js: JetStreamContext, app: IntakeApplication, until: int) -> None:
    """Run a consumer of SUPERVISION, as intake's main does, until it applied `until`."""
    consumer = StreamConsumer(
        js, SUPERVISION_STREAM, UpstreamProcessor(app, verified_case_policy(app))
    )
    await consumer.catch_up()
    assert consumer.position >= until
    assert app.recorder.max_tracking_id("SUPERVISION") == until


def resolved_events(app: IntakeApplication, issue_id: UUID) -> list[Issue.Resolved]:
    return [e for e in app.repository.event_store.get(issue_id) if isinstance(e, Issue.Resolved)]


async def test_a_verified_case_resolves_its_issue_and_the_history_names_the_case(
    supervision: JetStreamContext, intake_app: IntakeApplication
) -> None:
    issue_id = await referred_issue(intake_app)
    case_id = uuid4()
    last = await publish_verified(supervision, case_id, issue_id)

    await follow(supervision, intake_app, last)

    issue = intake_app.get_issue(issue_id)
    assert (issue.status, issue.resolved_via, issue.resolved_at) == ("resolved", "case", VERIFIED)
    assert intake_app.history(issue_id)[-1]["case_id"] == case_id


async def test_the_same_verification_twice_and_a_restarted_consumer_resolve_once(
    supervision: JetStreamContext, intake_app: IntakeApplication
) -> None:
    issue_id = await referred_issue(intake_app)
    case_id = uuid4()
    await publish_verified(supervision, case_id, issue_id, event_id="the-same-event")
    last = await publish_verified(supervision, case_id, issue_id, event_id="the-same-event")

    await follow(supervision, intake_app, last)
    await follow(supervision, intake_app, last)  # a restart replays from its tracking record

    assert len(resolved_events(intake_app, issue_id)) == 1


async def test_a_verification_arriving_after_the_issue_was_closed_and_reopened_changes_nothing(
    supervision: JetStreamContext, intake_app: IntakeApplication
) -> None:
    issue_id = await referred_issue(intake_app)
    case_id = uuid4()
    first = await publish_verified(supervision, case_id, issue_id)
    await follow(supervision, intake_app, first)
    await intake_app.close_issue(issue_id)
    await intake_app.reopen_issue(issue_id, "居民反映路灯又坏了")
    version = intake_app.get_issue(issue_id).version

    late = await publish_verified(supervision, case_id, issue_id)  # the old news, late
    await follow(supervision, intake_app, late)

    issue = intake_app.get_issue(issue_id)
    assert (issue.status, issue.version) == ("submitted", version)
    assert len(resolved_events(intake_app, issue_id)) == 1


async def test_a_verification_of_an_issue_answered_and_closed_before_changes_nothing(
    supervision: JetStreamContext, intake_app: IntakeApplication
) -> None:
    issue, _ = await intake_app.submit_issue("yanji", "路灯", "不亮", "城市管理", SUBMITTED)
    await intake_app.screen_issue(issue.id, "answered", "leader-1", answer="已修好")
    await intake_app.close_issue(issue.id)

    last = await publish_verified(supervision, uuid4(), issue.id)
    await follow(supervision, intake_app, last)

    assert intake_app.get_issue(issue.id).status == "closed"
    assert len(resolved_events(intake_app, issue.id)) == 1


async def test_an_unknown_issue_is_passed_over_and_the_next_message_still_applies(
    supervision: JetStreamContext, intake_app: IntakeApplication
) -> None:
    issue_id = await referred_issue(intake_app)
    await publish_verified(supervision, uuid4(), uuid4())
    last = await publish_verified(supervision, uuid4(), issue_id)

    await follow(supervision, intake_app, last)

    assert intake_app.get_issue(issue_id).status == "resolved"


async def test_a_verification_while_a_request_changes_the_issue_is_applied_once(
    supervision: JetStreamContext, intake_app: IntakeApplication
) -> None:
    originals = [await referred_issue(intake_app) for _ in range(20)]
    duplicates = []
    for _ in originals:
        duplicate, _ = await intake_app.submit_issue("yanji", "同上", "重复", "城市管理", SUBMITTED)
        duplicates.append(duplicate.id)
    last = 0
    for original in originals:
        last = await publish_verified(supervision, uuid4(), original)
    consumer = StreamConsumer(
        supervision,
        SUPERVISION_STREAM,
        UpstreamProcessor(intake_app, verified_case_policy(intake_app)),
    )
    running = asyncio.create_task(consumer.run())
    try:
        # Requests mark duplicates while the consumer resolves the originals: both change
        # the same aggregates, and each side must retry, not lose or repeat a change.
        await asyncio.gather(
            *[
                intake_app.screen_issue(d, "duplicate", "leader-1", duplicate_of=o)
                for d, o in zip(duplicates, originals, strict=True)
            ]
        )
        await wait_until(lambda: consumer.position >= last, what="the consumer caught up")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    for original, duplicate in zip(originals, duplicates, strict=True):
        assert len(resolved_events(intake_app, original)) == 1
        assert intake_app.get_issue(duplicate).status == "resolved"
        assert len(resolved_events(intake_app, duplicate)) == 1
