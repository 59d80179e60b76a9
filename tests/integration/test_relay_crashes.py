"""The relay after crashes: of its own process in mid-batch, and of the nats-server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.aio.client import Client
from nats.js import JetStreamContext

from services.intake.application import IntakeApplication
from services.intake.publishing import to_contract
from shared.embedded import EmbeddedNats, die_with_parent
from shared.messaging import ensure_stream
from shared.relay import Relay
from shared.settings import Settings
from shared.streams import INTAKE_STREAM
from tests.support.intake_store import store_issues
from tests.support.streams import (
    assert_stream_holds_each_event_once_in_order,
    read_stream,
    stream_holds,
    stream_messages,
)
from tests.support.waiting import wait_until


def stream_reaches(js: JetStreamContext, count: int) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return await stream_messages(js, INTAKE_STREAM) >= count

    return condition


RELAY_PROCESS = Path(__file__).with_name("relay_process.py")
ROOT = Path(__file__).resolve().parents[2]


def start_relay_process(
    store_env: dict[str, str], nats_url: str, batch_size: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(RELAY_PROCESS), json.dumps(store_env), nats_url, str(batch_size)],
        cwd=ROOT,
        preexec_fn=die_with_parent,
    )


async def test_a_relay_killed_in_mid_batch_and_restarted_publishes_each_event_once_in_order(
    js: JetStreamContext,
    intake: IntakeApplication,
    nats_server: EmbeddedNats,
    store_settings: Settings,
) -> None:
    total = 10_000
    # A duplicate window far shorter than the outage: resuming must not depend on it.
    await ensure_stream(js, INTAKE_STREAM, duplicate_window=1)
    store_issues(intake, total)
    store_env = store_settings.event_store_env("intake")

    first = start_relay_process(store_env, nats_server.url, batch_size=97)
    try:
        await wait_until(stream_reaches(js, 1000), timeout=20, what="relay well under way")
        first.kill()
        first.wait(5)
    finally:
        first.kill()
    published_before_kill = await stream_messages(js, INTAKE_STREAM)
    assert 0 < published_before_kill < total
    await asyncio.sleep(1.2)  # let the duplicate window (1 s) pass: a deliberate wait

    second = start_relay_process(store_env, nats_server.url, batch_size=97)
    try:
        returncode = await asyncio.wait_for(asyncio.to_thread(second.wait), 30)
    finally:
        second.kill()

    assert returncode == 0
    messages = await read_stream(js, INTAKE_STREAM)
    assert_stream_holds_each_event_once_in_order(messages, intake)
    assert [m.metadata.sequence.stream for m in messages] == list(range(1, total + 1))


async def test_the_relay_publishes_each_event_once_in_order_across_a_nats_server_crash(
    js: JetStreamContext,
    intake: IntakeApplication,
    nats_server: EmbeddedNats,
    background: list[asyncio.Task[object]],
    nats_client: Client,
) -> None:
    # Acks of messages sent into the dying connection never come: a short wait for them
    # keeps the test short (the relay's default is 5 s).
    relay = Relay(
        nats_client, INTAKE_STREAM, intake, to_contract, batch_size=50, ack_timeout_seconds=1
    )
    intake.saved_listeners.append(relay.wake)
    background.append(asyncio.create_task(relay.run()))

    async def store_in_bursts(count: int, start: int) -> None:
        for first in range(start, start + count, 100):
            await asyncio.to_thread(store_issues, intake, 100, first)
            await asyncio.sleep(0.005)  # yield: a steady flow of requests, not one lump

    writer = asyncio.create_task(store_in_bursts(3000, 0))
    await wait_until(lambda: stream_messages(js, INTAKE_STREAM), what="some messages")
    await asyncio.to_thread(nats_server.kill)
    await writer
    await asyncio.to_thread(store_issues, intake, 1000, 3000)  # stored during the outage

    await asyncio.to_thread(nats_server.start)
    await wait_until(stream_holds(js, INTAKE_STREAM, 4000), timeout=30, what="all 4000 published")

    assert_stream_holds_each_event_once_in_order(await read_stream(js, INTAKE_STREAM), intake)
