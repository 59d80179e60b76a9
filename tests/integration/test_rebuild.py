"""A projection dropped and rebuilt from the stream equals the one kept live."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nats.aio.client import Client
from nats.js import JetStreamContext

from services.intake.application import IntakeApplication
from services.intake.publishing import to_contract
from services.projections.views import IssueStatusView
from shared.consumer import StreamConsumer
from shared.relay import Relay
from shared.streams import INTAKE_STREAM
from tests.support.intake_store import store_issues
from tests.support.waiting import wait_until


async def test_a_view_rebuilt_from_sequence_one_equals_the_live_view(
    js: JetStreamContext,
    intake: IntakeApplication,
    open_view: Callable[[str], IssueStatusView],
    background: list[asyncio.Task[object]],
    nats_client: Client,
) -> None:
    live = open_view("live")
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract, batch_size=100)
    intake.saved_listeners.append(relay.wake)
    consumer = StreamConsumer(js, INTAKE_STREAM, live, max_batch=64)
    background.append(asyncio.create_task(relay.run()))
    background.append(asyncio.create_task(consumer.run()))

    stored = 0
    for burst in (1, 250, 17, 400, 80):
        await asyncio.to_thread(store_issues, intake, burst, stored, 50)
        stored += burst
        await wait_until(lambda n=stored: consumer.position == n, what=f"{stored} applied live")

    rebuilt = open_view("rebuilt")
    assert await StreamConsumer(js, INTAKE_STREAM, rebuilt).catch_up() == stored

    live_rows, rebuilt_rows = live.dump(), rebuilt.dump()
    assert len(live_rows["issue_status"]) == len(live_rows["issue_timeline"]) == stored
    assert rebuilt_rows == live_rows
    assert rebuilt.issues_collected(2020) == live.issues_collected(2020)
    assert rebuilt.issues_collected(2021) == live.issues_collected(2021)
    assert live.issues_collected(2020) and live.issues_collected(2021)
