"""The 3-node JetStream cluster of deploy/nats, started from those very files: the stream
leader is killed mid-load, publishing goes on, and the projection ends with every stored
event exactly once. Each side connects as its own NATS user (deploy/nats/users.conf)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.intake.application import IntakeApplication
from services.intake.publishing import to_contract
from services.projections.views import open_issue_status_view
from shared.consumer import StreamConsumer
from shared.embedded import die_with_parent, free_port, nats_server_binary
from shared.messaging import connect, set_up
from shared.nats_access import USERS, password_variable
from shared.relay import Relay
from shared.settings import Settings
from shared.streams import INTAKE_STREAM
from tests.support.intake_store import store_issues, stored_notifications
from tests.support.waiting import wait_until

NODE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "cluster" / "node.conf"
PASSWORDS = {password_variable(user): f"{user}-test-password" for user in USERS}


@dataclass
class Node:
    name: str
    client_port: int
    monitor_port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


def wait_healthy(node: Node, timeout: float = 20.0) -> None:
    health = f"http://127.0.0.1:{node.monitor_port}/healthz?js-enabled-only=true"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert node.process.poll() is None, f"{node.name} exited"
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(health, timeout=1) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{node.name} not healthy in {timeout}s")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[Node]]:
    cluster_ports = [free_port() for _ in range(3)]
    routes = {
        f"NATS_ROUTE_{i + 1}": f"nats-route://127.0.0.1:{p}" for i, p in enumerate(cluster_ports)
    }
    nodes: list[Node] = []
    try:
        for i, cluster_port in enumerate(cluster_ports):
            name = f"nats-{i + 1}"
            node_env = {
                "NATS_SERVER_NAME": name,
                "NATS_CLIENT_PORT": str(free_port()),
                "NATS_CLUSTER_PORT": str(cluster_port),
                "NATS_MONITOR_PORT": str(free_port()),
                "NATS_STORE_DIR": str(tmp_path / name),
                **routes,
                **PASSWORDS,
            }
            log = (tmp_path / f"{name}.log").open("wb")
            process = subprocess.Popen(
                [nats_server_binary(), "-c", str(NODE_CONFIG)],
                env={**os.environ, **node_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
            log.close()
            nodes.append(
                Node(
                    name,
                    int(node_env["NATS_CLIENT_PORT"]),
                    int(node_env["NATS_MONITOR_PORT"]),
                    process,
                )
            )
        for node in nodes:
            wait_healthy(node)
        yield nodes
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.terminate()
                node.process.wait(10)


async def test_killing_the_stream_leader_mid_load_loses_and_repeats_nothing(
    cluster: list[Node], tmp_path: Path
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
