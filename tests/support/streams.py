"""Reading a JetStream stream back and publishing as a service's relay would: what the tests
(and bench/) that look at the streams share."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import uuid4

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.intake.application import IntakeApplication
from services.projections.rebuild import UPSTREAMS
from shared.consumer import Delivered
from shared.contracts import Contract, Envelope
from shared.messaging import ensure_stream
from shared.relay import POSITION_HEADER
from shared.streams import StreamSpec
from tests.support.intake_store import message_ids, stored_notifications


async def read_stream(js: JetStreamContext, spec: StreamSpec, timeout: float = 20.0) -> list[Msg]:
    """Every message the stream holds now, in stream order (an ordered consumer)."""
    info = await js.stream_info(spec.name)
    if not info.state.messages:
        return []
    last = info.state.last_seq
    messages: list[Msg] = []
    complete = asyncio.Event()

    async def collect(msg: Msg) -> None:
        messages.append(msg)
        if msg.metadata.sequence.stream >= last:
            complete.set()

    subscription = await js.subscribe(
        f"{spec.service}.>",
        stream=spec.name,
        cb=collect,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        await asyncio.wait_for(complete.wait(), timeout)
    finally:
        await subscription.unsubscribe()
    return messages


def assert_stream_holds_each_event_once_in_order(
    messages: list[Msg], app: IntakeApplication
) -> None:
    notifications = stored_notifications(app)
    positions = [int(m.headers[POSITION_HEADER]) for m in messages]  # type: ignore[index]
    # A republished event's message id may be qualified (`<id>~<first seq>`), its envelope not.
    msg_ids = [m.headers["Nats-Msg-Id"].split("~")[0] for m in messages]  # type: ignore[index]
    envelope_ids = [json.loads(m.data)["id"] for m in messages]
    sequences = [m.metadata.sequence.stream for m in messages]

    assert len(messages) == len(notifications)
    assert positions == [n.id for n in notifications]
    assert msg_ids == envelope_ids == message_ids(app, notifications)
    assert len(set(msg_ids)) == len(msg_ids)
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))


async def stream_messages(js: JetStreamContext, spec: StreamSpec) -> int:
    return (await js.stream_info(spec.name)).state.messages


def stream_holds(
    js: JetStreamContext, spec: StreamSpec, count: int
) -> Callable[[], Awaitable[bool]]:
    """A condition for `wait_until`: the stream holds exactly `count` messages."""

    async def condition() -> bool:
        return await stream_messages(js, spec) == count

    return condition


async def publish_as_relay(
    js: JetStreamContext, subject: str, payload: bytes, msg_id: str | None, position: int | None
) -> int:
    """Publish as a service's relay would, with the store position views track (by default
    the next stream sequence: a store whose every event is published); the stream sequence."""
    if position is None:
        stream = await js.find_stream_name_by_subject(subject)
        position = (await js.stream_info(stream)).state.last_seq + 1
    headers = {POSITION_HEADER: str(position)}
    if msg_id is not None:
        headers["Nats-Msg-Id"] = msg_id
    return (await js.publish(subject, payload, headers=headers)).seq


async def publish_contract(js: JetStreamContext, office: str, contract: Contract) -> int:
    """A contract under the office's subject, in its envelope, as that service's relay puts
    it (a fresh event and message id); the stream sequence."""
    subject = contract.subject(office)
    envelope = Envelope.wrap(str(uuid4()), datetime.now(UTC), subject, contract)
    return await publish_as_relay(js, subject, envelope.to_bytes(), str(uuid4()), None)


async def publish_history(js: JetStreamContext, streams: dict[str, list[Delivered]]) -> None:
    """Publish each stream's messages of a generated history (tests/support/history.py) in
    order, with their event ids and store positions, as the relays do."""
    for spec in UPSTREAMS:
        await ensure_stream(js, spec)
        for message in streams[spec.name]:
            await js.publish_async(
                message.envelope.subject,
                message.envelope.to_bytes(),
                headers={
                    "Nats-Msg-Id": message.envelope.id,
                    POSITION_HEADER: str(message.position),
                },
            )
    await js.publish_async_completed()
