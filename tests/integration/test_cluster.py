"""The 3-node JetStream cluster of deploy/nats, started from those very files: the stream
leader is killed mid-load, publishing goes on, and the projection ends with every stored
event exactly once. Each side connects as its own NATS user (deploy/nats/users.conf)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.intake.application import IntakeApplication
from services.intake.publishing import to_contract
from services.projections.views import open_issue_status_view
from shared.consumer import StreamConsumer
from shared.messaging import connect, set_up
from shared.relay import Relay
from shared.settings import Settings
from shared.streams import INTAKE_STREAM
from tests.support.cluster import TEST_PASSWORDS, NatsNode, cluster_nodes
from tests.support.intake_store import store_issues, stored_notifications
from tests.support.waiting import wait_until


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[NatsNode]]:
    nodes = cluster_nodes(tmp_path)
    try:
        for node in nodes:
            node.start(node.environment(TEST_PASSWORDS))
        for node in nodes:
            node.wait_healthy()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def test_killing_the_stream_leader_mid_load_loses_and_repeats_nothing(
    cluster: list[NatsNode], tmp_path: Path
) -> None:
    intake = IntakeApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "i.db")}
    )
    view = open_issue_status_view(str(tmp_path / "projections.sqlite"))
    urls = ",".join(n.url for n in cluster)
    admin_nc = await connect(urls, "admin", "admin", "admin-test-password")
    await set_up(Settings(stream_replicas=3), admin_nc.jetstream())
    await admin_nc.close()
    intake_nc = await connect(urls, "intake", "intake", "intake-test-password")
    reader_nc = await connect(urls, "projections", "projections", "projections-test-password")
    tasks: list[asyncio.Task[None]] = []
    try:
        js = intake_nc.jetstream()
        relay = Relay(
            intake_nc, INTAKE_STREAM, intake, to_contract, ack_timeout_seconds=1, replicas=3
        )
        intake.saved_listeners.append(relay.wake)
        consumer = StreamConsumer(reader_nc.jetstream(), INTAKE_STREAM, view, stall_seconds=1)
        tasks += [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]

        async def steady_load(first: int, count: int) -> None:
            for start in range(first, first + count, 50):
                await asyncio.to_thread(store_issues, intake, 50, start)
                await asyncio.sleep(0.02)

        await steady_load(0, 1000)
        await wait_until(lambda: consumer.position >= 500, timeout=20, what="load flowing")
        leader = (await js.stream_info(INTAKE_STREAM.name)).cluster.leader  # type: ignore[union-attr]
        (victim,) = [n for n in cluster if n.name == leader]
        writer = asyncio.create_task(steady_load(1000, 1500))
        await asyncio.sleep(0.3)
        victim.kill()
        await writer  # writes go on: the store never waits for NATS

        stored = len(stored_notifications(intake))
        assert stored == 2500

        def projected() -> int:
            return sum(view.issues_collected(2020).values()) + sum(
                view.issues_collected(2021).values()
            )

        await wait_until(lambda: projected() == stored, timeout=60, what="all in the projection")
        timeline = view.dump()["issue_timeline"]
        assert len(timeline) == stored
        assert len({row[1] for row in timeline}) == stored  # each event once
        new_leader = (await js.stream_info(INTAKE_STREAM.name)).cluster.leader  # type: ignore[union-attr]
        assert new_leader not in (None, leader)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await intake_nc.close()
        await reader_nc.close()
        view.datastore.close()
        intake.close()
