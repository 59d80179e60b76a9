"""The stream consumer (事件消费) and the issue status view: each message applied once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.sqlite import SQLiteCursor
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig, StreamSource

from services.intake.application import IntakeApplication
from services.intake.domain import issue_id_for
from services.intake.publishing import to_contract
from services.projections.views import (
    IssueStatusView,
    open_issue_status_view,
    open_postgres_view,
)
from shared.consumer import Delivered, StreamConsumer
from shared.contracts import Envelope, IssueSubmittedV1
from shared.embedded import EmbeddedNats
from shared.eventstore import ServiceApplication
from shared.process import Upstream, UpstreamProcessor
from shared.relay import Relay
from shared.settings import Settings
from shared.streams import INTAKE_STREAM, StreamSpec
from tests.integration.conftest import stop
from tests.integration.test_projection_postgres import CountingView as PostgresCountingView
from tests.support.intake_store import OFFICES, message_ids, store_issues, stored_notifications
from tests.support.streams import publish_as_relay, stream_holds
from tests.support.waiting import wait_until


def delivered(sequence: int) -> Delivered:
    office = OFFICES[sequence % len(OFFICES)]
    contract = IssueSubmittedV1(
        issue_id=issue_id_for(office, f"k{sequence}"),
        office=office,
        title=f"问题 {sequence}",
        description="描述",
        category="城市管理",
        submitted_at=datetime(2020, 12, 31, 16, sequence % 60, tzinfo=UTC),
    )
    envelope = Envelope.wrap(
        f"event-{sequence}", datetime(2021, 1, 2, tzinfo=UTC), str(contract.issue_id), contract
    )
    return Delivered(sequence, envelope, contract)


class SequenceLog:
    """A view that also notes which stream sequences were handed to it."""

    def __init__(self, view: IssueStatusView) -> None:
        self.view = view
        self.sequences: list[int] = []

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.view.max_tracking_id(application_name)

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        self.view.apply(messages, tracking)
        self.sequences.extend(m.position for m in messages)


def collected(view: IssueStatusView) -> int:
    return sum(view.issues_collected(2020).values()) + sum(view.issues_collected(2021).values())


@pytest.fixture
def view(open_view: Callable[[str], IssueStatusView]) -> IssueStatusView:
    return open_view("projections")


def test_a_redelivered_batch_raises_integrity_error_and_changes_nothing(
    view: IssueStatusView,
) -> None:
    batch = [delivered(n) for n in range(1, 11)]
    view.apply(batch, Tracking("INTAKE", 10))
    before = view.dump()

    with pytest.raises(IntegrityError):
        view.apply(batch, Tracking("INTAKE", 10))
    with pytest.raises(IntegrityError):
        view.apply(batch[:5], Tracking("INTAKE", 5))

    assert view.dump() == before
    assert len(before["issue_status"]) == 10
    assert view.max_tracking_id("INTAKE") == 10


def test_a_refused_batch_leaves_no_part_of_itself_behind(view: IssueStatusView) -> None:
    view.apply([delivered(1)], Tracking("INTAKE", 1))
    before = view.dump()

    with pytest.raises(IntegrityError):
        view.apply([delivered(2), delivered(3)], Tracking("INTAKE", 1))

    assert view.dump() == before


def test_the_view_counts_an_issue_in_its_year_in_china(view: IssueStatusView) -> None:
    late = delivered(1).contract
    assert isinstance(late, IssueSubmittedV1)
    view.apply([delivered(1)], Tracking("INTAKE", 1))  # 2020-12-31T16:01Z is 2021 in China

    assert view.issues_collected(2021) == {late.office: 1}
    assert view.issues_collected(2020) == {}
    row = view.issue(str(late.issue_id))
    assert row is not None
    assert row["status"] == "submitted"
    assert [step["event_id"] for step in row["timeline"]] == ["event-1"]


async def test_a_restarted_consumer_resumes_after_its_tracking_record(
    js: JetStreamContext, intake: IntakeApplication, view: IssueStatusView, nats_client: Client
) -> None:
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract)
    store_issues(intake, 300)
    await relay.publish_all()
    assert await StreamConsumer(js, INTAKE_STREAM, view, max_batch=64).catch_up() == 300
    store_issues(intake, 200, start=300)
    await relay.publish_all()

    resumed = SequenceLog(view)
    assert await StreamConsumer(js, INTAKE_STREAM, resumed, max_batch=64).catch_up() == 500

    assert resumed.sequences == list(range(301, 501))
    assert collected(view) == 500
    assert len(view.dump()["issue_timeline"]) == 500
    assert view.max_tracking_id("INTAKE") == 500


class CountingView(IssueStatusView):
    """Notes each message it applies (in the same transaction, so a rolled-back batch
    would have shown up as a repeat)."""

    applied: list[int]

    def apply_message(self, c: SQLiteCursor, stream: str, message: Delivered) -> None:
        self.applied.append(message.position)
        super().apply_message(c, stream, message)


async def relayed_to_counting_view(
    issues: int,
    intake: IntakeApplication,
    nats_client: Client,
    path: Path,
    kind: type[CountingView],
) -> CountingView:
    """`issues` stored and relayed, and an empty counting view of that kind to apply them."""
    store_issues(intake, issues)
    await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()
    view = open_issue_status_view(str(path), kind)
    assert isinstance(view, CountingView)
    view.applied = []
    return view


async def test_two_consumers_on_one_view_apply_each_message_once(
    js: JetStreamContext, intake: IntakeApplication, tmp_path: Path, nats_client: Client
) -> None:
    view = await relayed_to_counting_view(
        2000, intake, nats_client, tmp_path / "shared-view.sqlite", CountingView
    )
    try:
        await asyncio.gather(
            StreamConsumer(js, INTAKE_STREAM, view, max_batch=50).catch_up(),
            StreamConsumer(js, INTAKE_STREAM, view, max_batch=70).catch_up(),
        )

        assert sorted(view.applied) == list(range(1, 2001))
        assert view.max_tracking_id("INTAKE") == 2000
        assert collected(view) == 2000
        assert len(view.dump()["issue_timeline"]) == 2000
    finally:
        view.datastore.close()


class SlowCountingView(CountingView):
    """A view that takes its time over each batch, as one catching up a long backlog does."""

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        time.sleep(0.005)
        super().apply(messages, tracking)


async def test_messages_dropped_on_the_way_are_applied_after_all_and_none_twice(
    js: JetStreamContext, intake: IntakeApplication, tmp_path: Path, nats_client: Client
) -> None:
    # nats-py drops what passes a subscription's pending limit ("slow consumer"); a catch-up
    # of a million events once lost 350,497 of them that way, and tracked past them. A pull
    # consumer asks for one batch at a time and cannot pass the default limit; here the limit
    # is made smaller than a batch so that the drops happen.
    view = await relayed_to_counting_view(
        600, intake, nats_client, tmp_path / "slow-view.sqlite", SlowCountingView
    )
    # Room for 40 messages, batches of 50: nats-py drops the tail of every batch.
    consumer = StreamConsumer(
        js, INTAKE_STREAM, view, max_batch=50, stall_seconds=0.2, pending_msgs_limit=40
    )
    try:
        assert await consumer.catch_up(timeout=60) == 600
        assert sorted(view.applied) == list(range(1, 601))
        assert collected(view) == 600
    finally:
        view.datastore.close()


async def test_the_consumer_follows_the_stream_across_a_nats_server_crash(
    js: JetStreamContext,
    intake: IntakeApplication,
    view: IssueStatusView,
    nats_server: EmbeddedNats,
    background: list[asyncio.Task[object]],
    nats_client: Client,
) -> None:
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract, ack_timeout_seconds=1)
    intake.saved_listeners.append(relay.wake)
    consumer = StreamConsumer(js, INTAKE_STREAM, view, stall_seconds=0.5)
    background.append(asyncio.create_task(relay.run()))
    background.append(asyncio.create_task(consumer.run()))
    store_issues(intake, 300)
    await wait_until(lambda: consumer.position == 300, what="first 300 applied")

    await asyncio.to_thread(nats_server.kill)
    await asyncio.to_thread(store_issues, intake, 200, 300)  # stored during the outage
    await asyncio.to_thread(nats_server.start)
    await asyncio.to_thread(store_issues, intake, 100, 500)  # stored after the restart

    await wait_until(lambda: consumer.position == 600, timeout=30, what="all 600 applied")
    assert view.max_tracking_id("INTAKE") == 600
    assert collected(view) == 600
    dump = view.dump()
    assert len(dump["issue_status"]) == len(dump["issue_timeline"]) == 600
    assert len({event_id for _, event_id, *_ in dump["issue_timeline"]}) == 600


async def purge_then_delete(
    js: JetStreamContext,
    intake: IntakeApplication,
    nats_client: Client,
    background: list[asyncio.Task[object]],
    consumer: StreamConsumer,
) -> None:
    """Run a relay and `consumer` while the stream is purged (refilled by a restarted relay at
    new sequences, 101 on), then deleted (created again by the relay, sequences from 1)."""
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract, ack_timeout_seconds=1)
    intake.saved_listeners.append(relay.wake)
    running = asyncio.create_task(relay.run())
    background += [running, asyncio.create_task(consumer.run())]
    await asyncio.to_thread(store_issues, intake, 100)
    await wait_until(lambda: consumer.position == 100, what="100 applied")

    running.cancel()  # its restart finds the stream behind the store
    await js.purge_stream(INTAKE_STREAM.name)
    healer = Relay(nats_client, INTAKE_STREAM, intake, to_contract, ack_timeout_seconds=1)
    intake.saved_listeners.append(healer.wake)
    background.append(asyncio.create_task(healer.run()))
    await wait_until(stream_holds(js, INTAKE_STREAM, 100), what="the purged stream refilled")
    await asyncio.to_thread(store_issues, intake, 50, 100)
    await wait_until(lambda: consumer.position == 150, what="150 applied")

    await js.delete_stream(INTAKE_STREAM.name)
    await asyncio.to_thread(store_issues, intake, 50, 150)  # the relay finds no stream
    await wait_until(stream_holds(js, INTAKE_STREAM, 200), timeout=15, what="stream again")
    await wait_until(lambda: consumer.position == 200, timeout=15, what="200 applied")


async def test_a_view_follows_a_stream_purged_and_deleted_mid_run_applying_each_event_once(
    js: JetStreamContext,
    intake: IntakeApplication,
    store_settings: Settings,
    tmp_path: Path,
    background: list[asyncio.Task[object]],
    nats_client: Client,
) -> None:
    # The view in SQLite, then (with intake) in PostgreSQL.
    if store_settings.projections_on_postgres:
        view = open_postgres_view(store_settings.postgres_env(), PostgresCountingView)
    else:
        view = open_issue_status_view(str(tmp_path / "counted.sqlite"), CountingView)
    assert isinstance(view, CountingView | PostgresCountingView)
    view.applied = []
    consumer = StreamConsumer(js, INTAKE_STREAM, view, stall_seconds=0.5)
    try:
        await purge_then_delete(js, intake, nats_client, background, consumer)

        assert view.applied == list(range(1, 201))
        assert view.max_tracking_id("INTAKE") == intake.recorder.max_notification_id() == 200
        assert collected(view) == 200
        dump = view.dump()
        assert len(dump["issue_status"]) == len(dump["issue_timeline"]) == 200
    finally:
        await stop(*background)
        view.datastore.close()


async def test_a_process_follows_a_stream_purged_and_deleted_mid_run_handling_each_event_once(
    js: JetStreamContext,
    intake: IntakeApplication,
    tmp_path: Path,
    background: list[asyncio.Task[object]],
    nats_client: Client,
) -> None:
    downstream = ServiceApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "d.db")}
    )
    handled: list[str] = []

    def policy(upstream: Upstream, processing: ProcessingEvent[UUID]) -> None:
        handled.append(upstream.envelope.id)

    consumer = StreamConsumer(
        js, INTAKE_STREAM, UpstreamProcessor(downstream, policy), stall_seconds=0.5
    )
    try:
        await purge_then_delete(js, intake, nats_client, background, consumer)

        assert handled == message_ids(intake, stored_notifications(intake))
        assert len(set(handled)) == 200
        # The upstream position the process records is the store's, not a stream's.
        assert downstream.recorder.max_tracking_id("INTAKE") == 200  # type: ignore[attr-defined]
    finally:
        await stop(*background)
        downstream.close()


@dataclass(frozen=True)
class Gathered(StreamSpec):
    """A stream sourced from two stores' streams, as `INTAKE_COUNTIES` gathers the county
    offices' intake: both stores count their positions from 1."""

    service: str = "intake"

    @property
    def name(self) -> str:
        return "GATHERED"

    @property
    def subjects(self) -> list[str]:
        return []

    @property
    def sourced(self) -> bool:
        return True

    def sources(self) -> list[StreamSource]:
        return [StreamSource(name="COUNTY_A"), StreamSource(name="COUNTY_B")]


async def test_a_stream_gathered_from_two_stores_is_applied_whole_though_their_positions_interleave(
    nats_client: Client, view: IssueStatusView
) -> None:
    js = nats_client.jetstream()
    for name, office in (("COUNTY_A", "yanji"), ("COUNTY_B", "tumen")):
        await js.add_stream(StreamConfig(name=name, subjects=[f"intake.{office}.>"]))
    await js.add_stream(Gathered().config())
    for position in range(1, 101):
        for offset, office in ((0, "yanji"), (1000, "tumen")):
            message = delivered(position + offset)
            contract = message.contract.model_copy(
                update={"office": office, "issue_id": issue_id_for(office, f"k{position}")}
            )
            envelope = Envelope.wrap(
                f"{office}-{position}", datetime(2021, 1, 2, tzinfo=UTC), office, contract
            )
            await publish_as_relay(
                js, contract.subject(office), envelope.to_bytes(), envelope.id, position
            )
    await wait_until(stream_holds(js, Gathered(), 200))

    assert await StreamConsumer(js, Gathered(), view, max_batch=64).catch_up() == 200
    assert collected(view) == 200
