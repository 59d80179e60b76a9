"""What the integration tests share: storing many issues, reading a stream back, waiting."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Notification
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.intake.application import IntakeApplication
from services.intake.domain import DEFAULT_CATEGORIES, Issue, issue_id_for
from shared.relay import POSITION_HEADER, event_id
from shared.streams import StreamSpec

OFFICES = ("yanji", "tumen", "dunhua", "hunchun")
NEW_YEAR = datetime(2020, 12, 31, 12, 0, tzinfo=UTC)


def open_intake(db_path: Path) -> IntakeApplication:
    return IntakeApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db_path)}
    )


def store_issues(app: IntakeApplication, count: int, start: int = 0, chunk: int = 1000) -> None:
    """Store `count` issues, `chunk` per transaction, spread over offices and New Year's Eve."""
    now = datetime.now(UTC)
    for first in range(start, start + count, chunk):
        issues = [
            Issue.submit(
                issue_id_for(OFFICES[n % len(OFFICES)], f"issue-{n}"),
                OFFICES[n % len(OFFICES)],
                f"问题 {n}",
                f"描述 {n}",
                DEFAULT_CATEGORIES[n % len(DEFAULT_CATEGORIES)],
                NEW_YEAR + timedelta(minutes=7 * (n % 200)),
                now=now,
            )
            for n in range(first, min(first + chunk, start + count))
        ]
        app.save(*issues)


def stored_notifications(app: IntakeApplication) -> list[Notification]:
    notifications: list[Notification] = []
    while page := app.recorder.select_notifications(
        notifications[-1].id if notifications else 0, 5000, inclusive_of_start=False
    ):
        notifications.extend(page)
    return notifications


def message_ids(app: IntakeApplication, notifications: list[Notification]) -> list[str]:
    """The message id of each stored event, in notification order."""
    events = [app.mapper.to_domain_event(n) for n in notifications]
    return [event_id(e.originator_id, e.originator_version) for e in events]


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


async def wait_until(
    condition: Callable[[], Awaitable[Any] | Any],
    timeout: float = 10.0,
    what: str = "the expected state",
) -> Any:
    """Poll until `condition` is truthy (it may be async); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            last_error = None
        except Exception as error:  # e.g. NATS not reachable yet
            last_error = error
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s (last error: {last_error!r})")
        await asyncio.sleep(0.01)


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
