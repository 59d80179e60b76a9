"""Two replicas of a relay: only the lease holder publishes; a killed holder is replaced."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from nats.aio.client import Client
from nats.js import JetStreamContext

from services.intake.application import IntakeApplication
from shared.embedded import EmbeddedNats, die_with_parent
from shared.lease import Lease
from shared.settings import Settings
from shared.streams import INTAKE_STREAM
from tests.support.intake_store import store_issues
from tests.support.streams import (
    assert_stream_holds_each_event_once_in_order,
    read_stream,
    stream_holds,
)
from tests.support.waiting import wait_until

LEASED_RELAY = Path(__file__).with_name("leased_relay_process.py")
ROOT = Path(__file__).resolve().parents[2]
TTL = 2.0


def start_replica(store_env: dict[str, str], nats_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(LEASED_RELAY), json.dumps(store_env), nats_url, str(TTL)],
        cwd=ROOT,
        preexec_fn=die_with_parent,
    )


async def test_one_relay_replica_publishes_and_another_takes_over_when_it_is_killed(
    js: JetStreamContext,
    intake: IntakeApplication,
    nats_server: EmbeddedNats,
    store_settings: Settings,
    nats_client: Client,
) -> None:
    store_env = store_settings.event_store_env("intake")
    observer = Lease(js, "relay-intake", holder="observer", ttl_seconds=TTL)
    first = start_replica(store_env, nats_server.url)
    second = None
    try:
        store_issues(intake, 500)
        await wait_until(stream_holds(js, INTAKE_STREAM, 500), timeout=20, what="500 published")
        leader = await observer.current_holder()
        assert leader is not None
        second = start_replica(store_env, nats_server.url)
        store_issues(intake, 500, start=500)
        await wait_until(stream_holds(js, INTAKE_STREAM, 1000), timeout=20, what="1000 published")
        assert await observer.current_holder() == leader, "the lease changed hands while held"

        first.kill()
        first.wait(5)
        killed_at = time.monotonic()
        store_issues(intake, 500, start=1000)  # stored while nobody holds the lease
        await wait_until(stream_holds(js, INTAKE_STREAM, 1500), timeout=20, what="taken over")
        took_over_after = time.monotonic() - killed_at

        assert await observer.current_holder() not in (None, leader)
        assert took_over_after < TTL + 3
        assert_stream_holds_each_event_once_in_order(await read_stream(js, INTAKE_STREAM), intake)
    finally:
        for process in (first, second):
            if process is not None:
                process.kill()
                process.wait(5)


async def test_a_lease_is_handed_over_at_once_on_a_clean_stop(js: JetStreamContext) -> None:
    started: list[str] = []

    async def job(name: str) -> None:
        started.append(name)
        await asyncio.Event().wait()

    first = Lease(js, "job", holder="first", ttl_seconds=30)
    second = Lease(js, "job", holder="second", ttl_seconds=30)
    one = asyncio.create_task(first.run(lambda: job("first")))
    await wait_until(lambda: started == ["first"], what="first holds it")
    two = asyncio.create_task(second.run(lambda: job("second")))
    await asyncio.sleep(0.5)
    assert started == ["first"], "two holders at once"

    one.cancel()
    await asyncio.gather(one, return_exceptions=True)
    # Well within the 30 s TTL: the stopped holder released it.
    await wait_until(lambda: started == ["first", "second"], timeout=15, what="handover")
    two.cancel()
    await asyncio.gather(two, return_exceptions=True)
