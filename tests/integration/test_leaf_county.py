"""An offline county office (deploy/nats/leaf): its own nats-server, a leaf node of the
prefecture's 3-node cluster, and its own intake. The link between them is cut, the county
goes on taking issues, the link comes back, and the prefecture's projection ends with every
county issue exactly once, in order. All configs are the deploy files themselves.

The other way, supervision's verdicts on the county's issues reach the county's intake through
its own SUPERVISION stream, sourced from the prefecture's, after a cut too; and a topic the
prefecture's meetings put on an agenda reaches it through its own MEETINGS, so the county's
issue shows the step "on the agenda" in its public timeline.

The link is a TCP relay the test controls: cutting it closes the leaf connection on both
servers (as a lost network does), while the servers and every client stay up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from nats.js import JetStreamContext

from services.intake.application import IntakeApplication
from services.intake.consumers import meetings_policy, verified_case_policy
from services.intake.domain import DEFAULT_CATEGORIES, Issue, issue_id_for
from services.intake.publishing import to_contract
from services.projections.views import open_issue_status_view
from shared.consumer import StreamConsumer
from shared.contracts import CaseVerifiedV1, TopicAddedV1
from shared.embedded import free_port
from shared.messaging import connect, ensure_stream_with_retry, set_up
from shared.process import UpstreamProcessor
from shared.relay import Relay
from shared.settings import NatsSettings
from shared.streams import INTAKE_STREAM, MEETINGS_STREAM, SUPERVISION_STREAM, intake_streams
from tests.support.cluster import TEST_PASSWORDS, NatsNode, route_variables
from tests.support.intake_store import NEW_YEAR, open_intake, stored_notifications
from tests.support.streams import (
    assert_stream_holds_each_event_once_in_order,
    publish_contract,
    read_stream,
    stream_holds,
    stream_messages,
)
from tests.support.waiting import wait_until

LEAF = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "leaf"
COUNTY = "hunchun"


class Link:
    """A TCP relay between the county's leaf node and the hub's leaf port."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._pipes: set[asyncio.Task[None]] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers = []
        await self._server.wait_closed()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hub_reader, hub_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return
        self._writers += [writer, hub_writer]
        for source, sink in ((reader, hub_writer), (hub_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()


def leaf_connections(monitor_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/leafz", timeout=2) as answer:
        return int(json.load(answer)["leafnodes"])


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[list[tuple[NatsNode, int]]]:
    """The prefecture's cluster, every node from deploy/nats/leaf/hub-node.conf; with each
    node its leaf port."""
    cluster_ports = [free_port() for _ in range(3)]
    routes = route_variables(cluster_ports)
    nodes: list[tuple[NatsNode, int]] = []
    try:
        for i, cluster_port in enumerate(cluster_ports):
            name = f"hub-{i + 1}"
            leaf = free_port()
            variables = {
                "NATS_CLUSTER_PORT": str(cluster_port),
                "NATS_LEAF_PORT": str(leaf),
                "NATS_STORE_DIR": str(tmp_path / name),
                **routes,
            }
            node = NatsNode(name, LEAF / "hub-node.conf", tmp_path / f"{name}.log", variables)
            node.start(node.environment(TEST_PASSWORDS))
            nodes.append((node, leaf))
        for node, _ in nodes:
            node.wait_healthy()
        yield nodes
    finally:
        for node, _ in nodes:
            node.stop()


@pytest.fixture
async def link(hub: list[tuple[NatsNode, int]]) -> AsyncIterator[Link]:
    link = Link(hub[0][1])
    await link.restore()
    yield link
    await link.cut()


@pytest.fixture
def county_leaf(tmp_path: Path, link: Link) -> Iterator[NatsNode]:
    """The county office's nats-server from deploy/nats/leaf/county.conf, linked to the hub."""
    variables = {
        "NATS_DOMAIN": f"county-{COUNTY}",
        "NATS_STORE_DIR": str(tmp_path / "county"),
        "NATS_HUB_URL": f"nats-leaf://county:county-test-password@127.0.0.1:{link.port}",
    }
    node = NatsNode(f"county-{COUNTY}", LEAF / "county.conf", tmp_path / "county.log", variables)
    node.start(node.environment({"intake": "county-intake-password"}))
    try:
        node.wait_healthy()
        yield node
    finally:
        node.stop()


def submit_issues(app: IntakeApplication, office: str, first: int, count: int) -> None:
    """What a clerk submits: issues of one office, one save each."""
    for n in range(first, first + count):
        app.save(
            Issue.submit(
                issue_id_for(office, f"issue-{n}"),
                office,
                f"问题 {n}",
                f"描述 {n}",
                DEFAULT_CATEGORIES[n % len(DEFAULT_CATEGORIES)],
                NEW_YEAR,
                now=datetime.now(UTC),
            )
        )


async def test_a_county_keeps_taking_issues_while_cut_off_and_the_prefecture_gets_each_once(
    hub: list[tuple[NatsNode, int]], county_leaf: NatsNode, link: Link, tmp_path: Path
) -> None:
    (hub_node, _), *_ = hub

    urls = ",".join(node.url for node, _ in hub)

    county = open_intake(tmp_path / "county-intake.db")
    prefecture = open_intake(tmp_path / "prefecture-intake.db")
    view = open_issue_status_view(str(tmp_path / "projections.sqlite"))
    admin_nc = await connect(urls, "admin", "admin", "admin-test-password")
    county_nc = await connect(
        f"nats://127.0.0.1:{county_leaf.client_port}", "county", "intake", "county-intake-password"
    )
    intake_nc = await connect(urls, "intake", "intake", "intake-test-password")
    reader_nc = await connect(urls, "projections", "projections", "projections-test-password")
    tasks: list[asyncio.Task[None]] = []
    try:
        # As the admin's set-up does with SHANGLIANG_LEAF_OFFICES=["hunchun"]; the county's
        # intake creates its own stream.
        reader = reader_nc.jetstream()
        _, counties = intake_streams([COUNTY])
        for stream in (INTAKE_STREAM, counties):
            await ensure_stream_with_retry(admin_nc.jetstream(), stream, replicas=3)
        county_relay = Relay(county_nc, INTAKE_STREAM, county, to_contract, ack_timeout_seconds=1)
        county.saved_listeners.append(county_relay.wake)
        prefecture_relay = Relay(intake_nc, INTAKE_STREAM, prefecture, to_contract, replicas=3)
        prefecture.saved_listeners.append(prefecture_relay.wake)
        consumer = StreamConsumer(reader, counties, view, stall_seconds=1)
        tasks += [
            asyncio.create_task(job)
            for job in (county_relay.run(), prefecture_relay.run(), consumer.run())
        ]

        def projected() -> int:
            return sum(view.issues_collected(2020).values())

        county_js = county_nc.jetstream()
        await asyncio.to_thread(submit_issues, county, COUNTY, 0, 10)
        await wait_until(lambda: projected() == 10, timeout=20, what="the link carrying issues")

        await link.cut()
        await wait_until(
            lambda: (
                leaf_connections(hub_node.monitor_port) == 0
                and leaf_connections(county_leaf.monitor_port) == 0
            ),
            what="the leaf connection gone on both sides",
        )
        await asyncio.to_thread(submit_issues, county, COUNTY, 10, 20)
        assert len(stored_notifications(county)) == 30  # taken and stored while cut off
        await wait_until(
            lambda: county_relay.position == stored_notifications(county)[-1].id,
            what="the county's own stream holding every issue",
        )
        await asyncio.sleep(2)
        # The positive control: while cut off the prefecture has not seen the new issues.
        assert (await reader.stream_info(counties.name)).state.messages == 10
        assert projected() == 10

        await link.restore()
        await wait_until(lambda: projected() == 30, timeout=30, what="the county's issues")

        # The prefecture's own intake goes on beside it, and the streams stay apart.
        await asyncio.to_thread(submit_issues, prefecture, "yanbian", 0, 3)
        await wait_until(lambda: prefecture_relay.position > 0, what="the prefecture's relay")
        assert_stream_holds_each_event_once_in_order(await read_stream(reader, counties), county)
        assert_stream_holds_each_event_once_in_order(
            await read_stream(admin_nc.jetstream(), INTAKE_STREAM), prefecture
        )
        assert (await county_js.stream_info(INTAKE_STREAM.name)).state.messages == 30
        timeline = view.dump()["issue_timeline"]
        assert len(timeline) == len({row[1] for row in timeline}) == 30
        assert projected() == 30
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for nc in (admin_nc, county_nc, intake_nc, reader_nc):
            await nc.close()
        view.datastore.close()
        county.close()
        prefecture.close()


async def publish_verified(js: JetStreamContext, office: str, issue_id: UUID) -> None:
    """A CaseVerifiedV1 on the prefecture's SUPERVISION, as supervision's relay puts it."""
    contract = CaseVerifiedV1(
        case_id=uuid4(),
        office=office,
        department="市住建局",
        issue_ids=[issue_id],
        verified_at=datetime.now(UTC),
    )
    await publish_contract(js, office, contract)


async def test_the_county_intake_resolves_its_issues_verified_at_the_prefecture_after_a_cut_too(
    hub: list[tuple[NatsNode, int]],
    county_leaf: NatsNode,
    link: Link,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (hub_node, _), *_ = hub
    county = open_intake(tmp_path / "county-intake.db")
    admin_nc = await connect(
        ",".join(node.url for node, _ in hub), "admin", "admin", "admin-test-password"
    )
    county_nc = await connect(
        f"nats://127.0.0.1:{county_leaf.client_port}", "county", "intake", "county-intake-password"
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        hub_js, county_js = admin_nc.jetstream(), county_nc.jetstream()
        _, counties = intake_streams([COUNTY])
        for stream in (INTAKE_STREAM, SUPERVISION_STREAM, counties):
            await ensure_stream_with_retry(hub_js, stream, replicas=3)
        # The county's set-up, as `shangliang nats-setup` runs it there.
        monkeypatch.setenv("SHANGLIANG_COUNTY_OFFICE", COUNTY)
        await set_up(NatsSettings(), county_js)
        county_relay = Relay(county_nc, INTAKE_STREAM, county, to_contract, ack_timeout_seconds=1)
        county.saved_listeners.append(county_relay.wake)
        # As services/intake/main.py wires it: the ordinary SUPERVISION, on the county's server.
        verdicts = StreamConsumer(
            county_js,
            SUPERVISION_STREAM,
            UpstreamProcessor(county, verified_case_policy(county)),
            stall_seconds=1,
        )
        tasks += [asyncio.create_task(job) for job in (county_relay.run(), verdicts.run())]

        await asyncio.to_thread(submit_issues, county, COUNTY, 0, 2)
        await wait_until(stream_holds(hub_js, counties, 2), timeout=20, what="issues at the hub")
        first, second = (issue_id_for(COUNTY, f"issue-{n}") for n in range(2))

        def resolved(issue_id: UUID) -> bool:
            return bool(county.get_issue(issue_id).status == "resolved")

        # Another office's verdict stays at the prefecture (it names a county issue, so that
        # the county's intake would resolve it if it came through).
        await publish_verified(hub_js, "tumen", second)
        await publish_verified(hub_js, COUNTY, first)
        await wait_until(lambda: resolved(first), timeout=20, what="the verdict at the county")
        assert await stream_messages(county_js, SUPERVISION_STREAM) == 1
        assert not resolved(second)

        await link.cut()
        await wait_until(
            lambda: (
                leaf_connections(hub_node.monitor_port) == 0
                and leaf_connections(county_leaf.monitor_port) == 0
            ),
            what="the leaf connection gone on both sides",
        )
        await publish_verified(hub_js, COUNTY, second)
        await asyncio.sleep(2)
        # The positive control: while cut off the county has not heard of the verdict.
        assert not resolved(second)
        assert await stream_messages(county_js, SUPERVISION_STREAM) == 1

        await link.restore()
        await wait_until(lambda: resolved(second), timeout=30, what="the verdict after the cut")
        held = await read_stream(county_js, SUPERVISION_STREAM)
        assert [m.subject for m in held] == [f"supervision.{COUNTY}.CaseVerified.v1"] * 2
        # Still no service subject crossed: the hub's INTAKE never took the county's issues.
        assert await stream_messages(hub_js, INTAKE_STREAM) == 0
        assert county.recorder.max_tracking_id(SUPERVISION_STREAM.name) == 3
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for nc in (admin_nc, county_nc):
            await nc.close()
        county.close()


async def publish_topic_added(js: JetStreamContext, office: str, issue_id: UUID) -> None:
    """A TopicAddedV1 on the prefecture's MEETINGS, as meetings' relay puts it: under the
    organising office's subject."""
    contract = TopicAddedV1(
        meeting_id=uuid4(),
        offices=[office],
        issue_id=issue_id,
        issue_office=office,
        added_at=datetime.now(UTC),
        meeting_title="老旧小区路灯改造专题协商会",
        starts_at=datetime(2026, 12, 1, 1, 30, tzinfo=UTC),
    )
    await publish_contract(js, office, contract)


async def test_a_topic_added_at_the_prefecture_shows_on_the_county_issues_timeline(
    hub: list[tuple[NatsNode, int]],
    county_leaf: NatsNode,
    link: Link,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    county = open_intake(tmp_path / "county-intake.db")
    admin_nc = await connect(
        ",".join(node.url for node, _ in hub), "admin", "admin", "admin-test-password"
    )
    county_nc = await connect(
        f"nats://127.0.0.1:{county_leaf.client_port}", "county", "intake", "county-intake-password"
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        hub_js, county_js = admin_nc.jetstream(), county_nc.jetstream()
        for stream in (INTAKE_STREAM, MEETINGS_STREAM, SUPERVISION_STREAM):
            await ensure_stream_with_retry(hub_js, stream, replicas=3)
        # The county's set-up, as `shangliang nats-setup` runs it there.
        monkeypatch.setenv("SHANGLIANG_COUNTY_OFFICE", COUNTY)
        await set_up(NatsSettings(), county_js)
        # As services/intake/main.py wires it: the ordinary MEETINGS, on the county's server.
        agendas = StreamConsumer(
            county_js,
            MEETINGS_STREAM,
            UpstreamProcessor(county, meetings_policy(county)),
            stall_seconds=1,
        )
        tasks.append(asyncio.create_task(agendas.run()))
        await asyncio.to_thread(submit_issues, county, COUNTY, 0, 2)
        first, second = (county.get_issue(issue_id_for(COUNTY, f"issue-{n}")) for n in range(2))

        def timeline(issue: Issue) -> list[dict[str, Any]]:
            found = county.track(county.tracking_code(issue))
            assert found is not None
            return found[1]

        def steps(issue: Issue) -> list[str]:
            return [step["step"] for step in timeline(issue)]

        assert steps(first) == steps(second) == ["received"]
        # Another office's agenda stays at the prefecture (it names a county issue, so that
        # the county's intake would show it if it came through).
        await publish_topic_added(hub_js, "tumen", second.id)
        await publish_topic_added(hub_js, COUNTY, first.id)

        await wait_until(
            lambda: "on_agenda" in steps(first), timeout=20, what="the agenda at the county"
        )
        (agenda,) = [step for step in timeline(first) if step["step"] == "on_agenda"]
        assert agenda["meeting"] == "老旧小区路灯改造专题协商会"
        assert await stream_messages(county_js, MEETINGS_STREAM) == 1
        assert steps(second) == ["received"]
        held = await read_stream(county_js, MEETINGS_STREAM)
        assert [m.subject for m in held] == [f"meetings.{COUNTY}.TopicAdded.v1"]
        # Still no service subject crossed: the hub's INTAKE never took the county's issues.
        assert await stream_messages(hub_js, INTAKE_STREAM) == 0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for nc in (admin_nc, county_nc):
            await nc.close()
        county.close()
