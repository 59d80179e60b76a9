"""The read model in PostgreSQL: the same answers as in SQLite, one application per message
with two replicas on one schema, and a rebuild into a new schema that the service switches to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.intake.application import IntakeApplication
from services.intake.publishing import to_contract
from services.projections.facts import TOTAL
from services.projections.main import create_app
from services.projections.queries import (
    FIGURES,
    IssueFilter,
    breakdown,
    counted_as_of,
    drill_down,
    list_issues,
    recount,
)
from services.projections.rebuild import UPSTREAMS, check
from services.projections.stores import SchemaViews
from services.projections.views import (
    PostgresProjectionView,
    ProjectionView,
    open_postgres_view,
    open_projection_view,
)
from shared.consumer import Delivered, StreamConsumer
from shared.embedded import EmbeddedNats
from shared.messaging import ensure_stream
from shared.relay import Relay
from shared.settings import Settings
from shared.streams import INTAKE_STREAM
from tests.conftest import POSTGRES, postgres_settings
from tests.support.history import batches, history
from tests.support.intake_store import open_intake, store_issues
from tests.support.stores import Store
from tests.support.streams import publish_history
from tests.support.waiting import wait_until


@pytest.fixture
def settings(postgres_schema: str, tmp_path: Path) -> Settings:
    """Event stores in SQLite files (quick), the read model in a PostgreSQL schema."""
    return postgres_settings(
        postgres_schema, data_dir=tmp_path / "data", projection_store="postgres"
    )


@pytest.fixture
def views(settings: Settings, tmp_path: Path) -> Iterator[tuple[ProjectionView, ProjectionView]]:
    """The same view in SQLite and in PostgreSQL, loaded with the same history."""
    lite = open_projection_view(str(tmp_path / "projections.sqlite"))
    pg = open_postgres_view(settings.postgres_env())
    for stream, messages in history(160, seed=3).items():
        for part in batches(messages, 40):
            for view in (lite, pg):
                view.apply(part, Tracking(stream, part[-1].position))
    try:
        yield lite, pg
    finally:
        lite.datastore.close()
        pg.datastore.close()


def test_the_view_in_postgres_answers_every_question_as_the_view_in_sqlite(
    views: tuple[ProjectionView, ProjectionView], settings: Settings
) -> None:
    lite, pg = views
    assert pg.dump() == lite.dump()
    assert len(lite.dump()["issue_status"]) == 160
    for year in (2020, 2021):
        assert pg.counters(year) == lite.counters(year)
        assert recount(pg, year) == recount(lite, year) == lite.counters(year)
        assert recount(pg, year, "2020-01-20T00:00:00.000000+08:00") == recount(
            lite, year, "2020-01-20T00:00:00.000000+08:00"
        )
        until = "2020-01-20T23:59:59.999999+08:00"
        assert counted_as_of(pg, year, until) == counted_as_of(lite, year, until)
        for as_of in (None, date(2020, 1, 20)):
            assert breakdown(pg, year, None, as_of) == breakdown(lite, year, None, as_of)
    for where in (
        IssueFilter(),
        IssueFilter(offices=["yanji", "tumen"], year=2020),
        IssueFilter(key_problem=True),
        IssueFilter(year=2020, month=1),
        IssueFilter(status="resolved", department="市住建局"),
    ):
        assert list_issues(pg, where, 25, 5) == list_issues(lite, where, 25, 5)
    for figure in FIGURES:
        for offices, as_of in ((None, None), (["yanji"], date(2020, 1, 20))):
            answers = [drill_down(v, figure, 2020, offices, as_of, None, 50, 0) for v in views]
            assert answers[0] == answers[1], figure
    some = [row[0] for row in lite.dump()["issue_status"][:20]]
    assert [pg.issue(i) for i in some] == [lite.issue(i) for i in some]
    assert lite.counters(2020)[0].get((TOTAL, "issues_collected"))

    # The rows are PostgreSQL's own, in the configured schema.
    with psycopg.connect(**POSTGRES) as connection:
        row = connection.execute(f"SELECT COUNT(*) FROM {settings.postgres_schema}.facts")
        (stored,) = row.fetchone() or (0,)
    fact_tables = ("issue_timeline", "activity_facts", "meeting_facts", "case_facts")
    assert stored == sum(len(lite.dump()[name]) for name in fact_tables) > 0


class CountingView(PostgresProjectionView):
    """Notes each message it applies, in the batch's transaction: a batch applied and rolled
    back, or applied by both replicas, shows up as a repeat."""

    applied: list[int]

    def apply_message(self, c: object, stream: str, message: Delivered) -> None:
        self.applied.append(message.position)
        super().apply_message(c, stream, message)


async def test_two_replicas_on_one_postgres_schema_apply_each_message_once(
    nats_client: Client, js: JetStreamContext, settings: Settings, tmp_path: Path
) -> None:
    intake = open_intake(tmp_path / "intake.sqlite")
    store_issues(intake, 1500)
    await Relay(nats_client, INTAKE_STREAM, intake, to_contract).publish_all()
    applied: list[int] = []
    replicas = [open_postgres_view(settings.postgres_env(), CountingView) for _ in "ab"]
    for replica in replicas:
        assert isinstance(replica, CountingView)
        replica.applied = applied
    try:
        await asyncio.gather(
            StreamConsumer(js, INTAKE_STREAM, replicas[0], max_batch=50).catch_up(),
            StreamConsumer(js, INTAKE_STREAM, replicas[1], max_batch=70).catch_up(),
        )

        assert sorted(applied) == list(range(1, 1501))
        assert replicas[1].max_tracking_id("INTAKE") == 1500
        assert len(replicas[0].dump()["issue_status"]) == 1500
    finally:
        for replica in replicas:
            replica.datastore.close()
        intake.close()


async def test_a_rebuild_in_postgres_fills_a_new_schema_and_switches_the_live_view_to_it(
    nats_client: Client, settings: Settings, tmp_path: Path
) -> None:
    js = nats_client.jetstream()
    await publish_history(js, history(120, seed=7))
    store = SchemaViews(settings)
    live = store.open(store.current())
    assert store.current() == settings.postgres_schema
    consumers = [StreamConsumer(js, spec, live, max_batch=40) for spec in UPSTREAMS]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        ends = {spec.name: (await js.stream_info(spec.name)).state.last_seq for spec in UPSTREAMS}
        await wait_until(
            lambda: all(c.position == ends[c.tracking_name] for c in consumers),
            timeout=30,
            what="all three streams applied",
        )
        target = await store.rebuild(js)

        assert store.current() == target != settings.postgres_schema
        rebuilt = store.open(target)
        try:
            assert rebuilt.dump() == live.dump()
            assert {s.name: rebuilt.max_tracking_id(s.name) for s in UPSTREAMS} == ends
        finally:
            rebuilt.datastore.close()
        # `check` of a view in PostgreSQL: rebuilt into a scratch file, compared row by row.
        assert await check(js, live, tmp_path / "scratch.sqlite") == []
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        live.datastore.close()


async def test_the_service_on_postgres_follows_thousands_of_events_within_seconds(
    nats_server: EmbeddedNats, nats_client: Client, postgres_schema: str, tmp_path: Path
) -> None:
    """Everything in PostgreSQL, as `bench.run --store postgres` runs it: intake's events and
    the service's view in one schema. The view follows the stream while it grows, and the
    bench's count (the service's own `view_store`) finds the rows where the service put them."""
    settings = postgres_settings(
        postgres_schema,
        data_dir=tmp_path / "data",
        event_store="postgres",
        nats_url=nats_server.url,
    )
    js = nats_client.jetstream()
    for spec in UPSTREAMS:
        await ensure_stream(js, spec)
    intake = IntakeApplication(env=settings.event_store_env("intake"))
    relay = Relay(nats_client, INTAKE_STREAM, intake, to_contract)
    app = create_app(settings)
    store = Store(settings)
    total, chunk = 4000, 500
    try:
        async with app.router.lifespan_context(app):
            for start in range(0, total, chunk):
                await asyncio.to_thread(store_issues, intake, chunk, start, chunk)
                await relay.publish_all()
            published = time.monotonic()
            await wait_until(
                lambda: asyncio.to_thread(lambda: store.count_projected_issues() == total),
                timeout=15,
                what=f"all {total} issues in the view in PostgreSQL",
            )
            caught_up_s = time.monotonic() - published
            assert app.state.view.max_tracking_id("INTAKE") == total
        with psycopg.connect(**POSTGRES) as connection:
            query = f"SELECT COUNT(*) FROM {postgres_schema}.issue_status"
            assert (connection.execute(query).fetchone() or (0,))[0] == total
        assert not (tmp_path / "data" / "projections.sqlite").exists()
        print(f"{total} issues projected {caught_up_s:.2f} s after the last was published")
    finally:
        intake.close()
