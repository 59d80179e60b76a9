"""Meetings learns topics from intake's real stream, and publishes its own, over nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.meetings.application import MeetingsApplication
from services.meetings.consumers import intake_policy
from services.meetings.publishing import to_contract
from services.meetings.rules import MeetingConflict
from shared.clock import CHINA
from shared.consumer import Delivered, StreamConsumer
from shared.contracts import Envelope, IssueScreenedV1, decode
from shared.messaging import ensure_stream
from shared.process import UpstreamProcessor
from shared.relay import POSITION_HEADER, Relay
from shared.settings import Settings
from shared.streams import INTAKE_STREAM, MEETINGS_STREAM
from tests.support.serving import serving
from tests.support.streams import read_stream
from tests.support.waiting import wait_until

START = datetime(2020, 7, 16, 14, 30, tzinfo=CHINA)
HALL = "延吉市政协委员协商议事厅"


@pytest.fixture
async def meetings(tmp_path: Path) -> AsyncIterator[MeetingsApplication]:
    app = MeetingsApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "m.db")},
        offices=Settings().offices,
    )
    async with serving(app):
        await app.record_venue("yanji", HALL, None)
        yield app


class Forgetful:
    """A view that claims to have seen nothing, so the stream delivers everything again."""

    def __init__(self, processor: UpstreamProcessor) -> None:
        self.processor = processor

    def max_tracking_id(self, application_name: str) -> int | None:
        return 0

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        self.processor.apply(messages, tracking)


async def publish_screening(js: JetStreamContext, issue_id: UUID, msg_id: str) -> bool:
    """Intake's topic decision as intake's relay would publish it (the event at position 1
    of intake's store, whatever the message id); True if the stream took it."""
    contract = IssueScreenedV1(
        issue_id=issue_id,
        office="yanji",
        decision="topic",
        screened_at=datetime(2020, 6, 20, 10, 0, tzinfo=UTC),
        screened_by="yanji-leader",
        title="无物业小区楼道灯损坏",
        category="物业管理",
    )
    envelope = Envelope.wrap(msg_id, datetime.now(UTC), contract.subject("yanji"), contract)
    ack = await js.publish(
        contract.subject("yanji"),
        envelope.to_bytes(),
        headers={"Nats-Msg-Id": msg_id, POSITION_HEADER: "1"},
    )
    return not ack.duplicate


async def test_a_topic_refused_before_intakes_decision_arrives_is_accepted_after_it(
    nats_client: Client,
    js: JetStreamContext,
    meetings: MeetingsApplication,
    background: list[asyncio.Task[object]],
) -> None:
    await ensure_stream(js, MEETINGS_STREAM)
    processor = UpstreamProcessor(meetings, intake_policy(meetings))
    consumer = StreamConsumer(js, INTAKE_STREAM, processor, stall_seconds=0.5)
    relay = Relay(nats_client, MEETINGS_STREAM, meetings, to_contract)
    meetings.saved_listeners.append(relay.wake)
    background += [asyncio.create_task(consumer.run()), asyncio.create_task(relay.run())]
    meeting, _ = await meetings.plan_meeting(
        "yanji",
        [],
        "thematic",
        "无物业小区管理",
        "老旧小区",
        START,
        START + timedelta(hours=2),
        HALL,
        None,
        START - timedelta(days=14),
    )
    issue = uuid4()

    with pytest.raises(MeetingConflict, match="not accepted"):
        await meetings.add_topic(meeting.id, issue, None, None)

    assert await publish_screening(js, issue, "intake-event-1")
    await wait_until(lambda: meetings.accepted_topic(issue), what="the accepted topic")
    added, _ = await meetings.add_topic(meeting.id, issue, None, None)
    assert list(added.topics) == [str(issue)]

    # Intake's relay publishing the same event again: dropped by the server inside the
    # duplicate window, stored a second time after it — neither changes anything here.
    assert not await publish_screening(js, issue, "intake-event-1")
    assert await publish_screening(js, issue, "intake-event-1-after-the-window")
    await wait_until(lambda: consumer.sequence == 2, what="the consumer at the second message")
    assert consumer.position == 1
    stored = meetings.recorder.max_notification_id()
    topic = meetings.accepted_topic(issue)
    assert topic is not None and topic.version == 2  # accepted, then taken by the meeting

    # The whole stream delivered again to the same store: each position is applied once.
    again = StreamConsumer(js, INTAKE_STREAM, Forgetful(processor))
    assert await again.catch_up(timeout=10) == 1
    assert meetings.recorder.max_notification_id() == stored
    assert meetings.get_meeting(meeting.id).topics.keys() == {str(issue)}

    async def published_topic() -> list[object]:
        contracts = [decode(m.data)[1] for m in await read_stream(js, MEETINGS_STREAM)]
        return [c for c in contracts if type(c).__name__ == "TopicAddedV1"]

    (topic_added,) = await wait_until(published_topic, what="TopicAddedV1 on MEETINGS")
    assert topic_added.issue_id == issue  # type: ignore[attr-defined]
