"""The outbox relay (事件转发) publishes every stored event once, in notification order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.js import JetStreamContext

from services.intake.application import IntakeApplication
from services.intake.publishing import to_contract
from shared.contracts import Actor, IssueSubmittedV1, decode
from shared.relay import Relay
from shared.streams import INTAKE_STREAM
from tests.conftest import acting_as
from tests.support.intake_store import store_issues
from tests.support.streams import (
    assert_stream_holds_each_event_once_in_order,
    read_stream,
    stream_holds,
    stream_messages,
)
from tests.support.waiting import wait_until

SUBMITTED = datetime(2020, 6, 4, 7, 30, tzinfo=UTC)


async def test_publishes_every_event_exactly_once_in_notification_order(
    js: JetStreamContext, intake: IntakeApplication, nats_client: Client
) -> None:
    store_issues(intake, 1000, chunk=300)
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract, batch_size=64)

    published = await relay.publish_all()

    assert published == 1000
    messages = await read_stream(js, INTAKE_STREAM)
    assert_stream_holds_each_event_once_in_order(messages, intake)
    assert [m.metadata.sequence.stream for m in messages] == list(range(1, 1001))
    envelope, contract = decode(messages[0].data)
    assert isinstance(contract, IssueSubmittedV1)
    assert envelope.id == messages[0].headers["Nats-Msg-Id"]  # type: ignore[index]
    assert messages[0].subject == f"intake.{contract.office}.IssueSubmitted.v1"


async def test_publishing_again_adds_nothing(
    js: JetStreamContext, intake: IntakeApplication, nats_client: Client
) -> None:
    store_issues(intake, 100)
    await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()

    again = await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()

    assert again == 0
    assert await stream_messages(js, INTAKE_STREAM) == 100


async def test_a_new_relay_resumes_after_the_last_message_of_the_stream(
    js: JetStreamContext, intake: IntakeApplication, nats_client: Client
) -> None:
    store_issues(intake, 150)
    await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()
    store_issues(intake, 50, start=150)

    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract)
    await relay.resync()
    assert relay.position == 150
    assert await relay.publish_all() == 50

    assert_stream_holds_each_event_once_in_order(await read_stream(js, INTAKE_STREAM), intake)


async def test_resync_on_an_empty_stream_starts_at_position_zero(
    js: JetStreamContext, intake: IntakeApplication, nats_client: Client
) -> None:
    store_issues(intake, 10)
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract)

    await relay.resync()

    assert relay.position == 0
    assert relay.synced


async def test_a_running_relay_publishes_events_as_they_are_stored(
    js: JetStreamContext,
    intake: IntakeApplication,
    background: list[asyncio.Task[object]],
    nats_client: Client,
) -> None:
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract, idle_poll_seconds=30)
    intake.saved_listeners.append(relay.wake)
    background.append(asyncio.create_task(relay.run()))
    await wait_until(lambda: relay.synced, what="relay in step with the stream")

    for burst in range(3):
        await asyncio.to_thread(store_issues, intake, 40, start=40 * burst)
        await wait_until(
            stream_holds(js, INTAKE_STREAM, 40 * (burst + 1)),
            what="burst published (woken, not polled)",
        )

    assert_stream_holds_each_event_once_in_order(await read_stream(js, INTAKE_STREAM), intake)


async def test_a_purged_stream_is_published_again_from_the_store_at_once(
    js: JetStreamContext,
    intake: IntakeApplication,
    background: list[asyncio.Task[object]],
    nats_client: Client,
) -> None:
    # The server remembers the purged messages' ids for its duplicate window (120 s): the
    # relay must not wait for it to pass.
    store_issues(intake, 200)
    await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()
    await js.purge_stream(INTAKE_STREAM.name)
    assert await stream_messages(js, INTAKE_STREAM) == 0

    relay = Relay(
        nats_client, INTAKE_STREAM, intake, to_contract, batch_size=64, ack_timeout_seconds=1
    )
    background.append(asyncio.create_task(relay.run()))

    await wait_until(stream_holds(js, INTAKE_STREAM, 200), timeout=5, what="stream healed")
    messages = await read_stream(js, INTAKE_STREAM)
    assert_stream_holds_each_event_once_in_order(messages, intake)
    assert messages[0].metadata.sequence.stream == 201
    assert messages[0].headers["Nats-Msg-Id"].endswith("~201")  # type: ignore[index]


async def test_a_stream_purged_under_a_running_relay_is_refilled_in_store_order(
    js: JetStreamContext,
    intake: IntakeApplication,
    background: list[asyncio.Task[object]],
    nats_client: Client,
) -> None:
    # A purge keeps the last sequence: the relay's next messages fit right after it and
    # nothing refuses them. Only the stream's first message tells that the rest is gone.
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract, check_seconds=0.2)
    intake.saved_listeners.append(relay.wake)
    background.append(asyncio.create_task(relay.run()))
    store_issues(intake, 80)
    await wait_until(stream_holds(js, INTAKE_STREAM, 80), what="80 published")

    await js.purge_stream(INTAKE_STREAM.name)
    store_issues(intake, 20, start=80)

    await wait_until(stream_holds(js, INTAKE_STREAM, 100), timeout=10, what="stream refilled")
    messages = await read_stream(js, INTAKE_STREAM)
    assert_stream_holds_each_event_once_in_order(messages, intake)
    assert messages[0].metadata.sequence.stream > 80


async def test_a_relay_started_on_a_stream_that_lost_its_start_refills_it(
    js: JetStreamContext, intake: IntakeApplication, nats_client: Client
) -> None:
    # What a crash leaves: the old relay went on after the purge (81-100), then died.
    store_issues(intake, 80)
    before = Relay(nats_client, INTAKE_STREAM, intake, to_contract)
    await before.publish_all()
    await js.purge_stream(INTAKE_STREAM.name)
    store_issues(intake, 20, start=80)
    await before.publish_batch()
    assert await stream_messages(js, INTAKE_STREAM) == 20

    await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()

    assert_stream_holds_each_event_once_in_order(await read_stream(js, INTAKE_STREAM), intake)


async def test_a_stream_missing_one_message_in_the_middle_is_refilled(
    js: JetStreamContext, intake: IntakeApplication, nats_client: Client
) -> None:
    store_issues(intake, 100)
    await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()
    await js.delete_msg(INTAKE_STREAM.name, 50)

    await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()

    assert_stream_holds_each_event_once_in_order(await read_stream(js, INTAKE_STREAM), intake)


async def test_a_deleted_stream_is_created_again_and_refilled_while_the_relay_runs(
    js: JetStreamContext,
    intake: IntakeApplication,
    background: list[asyncio.Task[object]],
    nats_client: Client,
) -> None:
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract, ack_timeout_seconds=1)
    intake.saved_listeners.append(relay.wake)
    background.append(asyncio.create_task(relay.run()))
    store_issues(intake, 300)
    await wait_until(stream_holds(js, INTAKE_STREAM, 300), what="300 published")

    await js.delete_stream(INTAKE_STREAM.name)
    store_issues(intake, 100, start=300)  # the relay learns of the loss by publishing these

    await wait_until(stream_holds(js, INTAKE_STREAM, 400), timeout=10, what="stream refilled")
    assert_stream_holds_each_event_once_in_order(await read_stream(js, INTAKE_STREAM), intake)


async def test_each_envelope_names_who_caused_its_event(
    js: JetStreamContext, intake: IntakeApplication, nats_client: Client
) -> None:
    store_issues(intake, 1)  # stored as no request: who is unknown
    clerk = Actor(subject="clerk-li", office="yanji", role="clerk", roles=["clerk"], request_id="7")
    writer = asyncio.create_task(intake.group_commit.run())
    try:
        with acting_as(clerk):
            await intake.submit_issue("yanji", "路灯损坏", "路灯不亮", "城市管理", SUBMITTED)
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)

    await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()

    envelopes = [decode(m.data)[0] for m in await read_stream(js, INTAKE_STREAM)]
    assert [e.actor for e in envelopes] == [None, clerk]
