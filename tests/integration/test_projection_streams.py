"""The read side follows all three streams on a real nats-server; rebuild and check."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from eventsourcing.persistence import Tracking
from nats.aio.client import Client

from services.projections.rebuild import (
    UPSTREAMS,
    check,
    in_process,
    in_thread,
    live_file,
    rebuild,
    replay,
)
from services.projections.stores import view_store
from services.projections.views import open_projection_view
from shared.consumer import StreamConsumer
from shared.embedded import EmbeddedNats
from shared.settings import Settings
from tests.conftest import postgres_environment
from tests.support.history import history
from tests.support.streams import publish_history
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


async def test_consumers_of_the_three_streams_build_the_view_that_a_rebuild_builds_again(
    nats_client: Client, tmp_path: Path
) -> None:
    js = nats_client.jetstream()
    streams = history(300, seed=11)
    first, later = (
        {s: m[: len(m) // 2] for s, m in streams.items()},
        {s: m[len(m) // 2 :] for s, m in streams.items()},
    )
    await publish_history(js, first)
    live = open_projection_view(str(tmp_path / "projections.sqlite"))
    consumers = [StreamConsumer(js, spec, live, max_batch=50) for spec in UPSTREAMS]
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        await publish_history(js, later)
        ends = {s: len(m) for s, m in streams.items()}
        await wait_until(
            lambda: all(c.position == ends[c.tracking_name] for c in consumers),
            timeout=30,
            what="all three streams applied",
        )
        rebuilt_path = await rebuild(js, tmp_path)
        assert live_file(tmp_path) == rebuilt_path
        rebuilt = open_projection_view(str(rebuilt_path))
        try:
            assert rebuilt.dump() == live.dump()
            assert rebuilt.counters(2020) == live.counters(2020)
            statuses = {row[11] for row in live.dump()["issue_status"]}
            assert {"resolved", "overdue", "closed", "under_supervision", "report"} <= statuses
        finally:
            rebuilt.datastore.close()
        assert await check(js, live, tmp_path / "scratch.sqlite") == []
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        live.datastore.close()


async def test_check_reports_a_tampered_row_and_exits_1(
    nats_server: EmbeddedNats, nats_client: Client, store_settings: Settings
) -> None:
    js = nats_client.jetstream()
    await publish_history(js, history(60, seed=5))
    data_dir = store_settings.data_dir
    data_dir.mkdir()
    env = {
        **os.environ,
        "SHANGLIANG_NATS_URL": nats_server.url,
        "SHANGLIANG_DATA_DIR": str(data_dir),
    }
    on_postgres = store_settings.projections_on_postgres
    if on_postgres:  # the read model goes where the event stores are, by that setting alone
        env |= postgres_environment(store_settings.postgres_schema)
    views = view_store(store_settings)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tools.cli", "projections", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    rebuilt = await asyncio.to_thread(cli, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (data_dir / "projections.current").exists() != on_postgres
    live_name = views.current()
    assert live_name in rebuilt.stdout
    equal = await asyncio.to_thread(cli, "check")
    assert equal.returncode == 0, equal.stdout + equal.stderr
    assert "一致 / equal" in equal.stdout

    view = views.open(live_name)
    try:
        with view.datastore.transaction(commit=True) as c:
            c.execute(
                "UPDATE issue_status SET status = 'closed' WHERE issue_id ="
                " (SELECT MIN(issue_id) FROM issue_status)"
            )
    finally:
        view.datastore.close()
    differs = await asyncio.to_thread(cli, "check")
    assert differs.returncode == 1, differs.stdout + differs.stderr
    assert "不一致 / differs: issue_status" in differs.stdout
    assert "'closed'" in differs.stdout


async def test_a_replay_in_small_pulls_loads_what_the_live_path_applies(
    nats_client: Client, tmp_path: Path
) -> None:
    js = nats_client.jetstream()
    streams = history(120, seed=12)
    await publish_history(js, streams)
    live = open_projection_view(str(tmp_path / "live.sqlite"))
    part = open_projection_view(str(tmp_path / "part.sqlite"))
    try:
        for spec in UPSTREAMS:
            messages = streams[spec.name]
            live.apply(messages, Tracking(spec.name, len(messages)))
        # Many pulls of 23 messages: the worker falls behind and this process decodes too.
        async with in_process(tmp_path / "bulk.sqlite") as loader:
            for spec in UPSTREAMS:
                end = len(streams[spec.name])
                assert await replay(js, loader.apply, spec, 0, end, batch_size=23) == end
            await loader.finish()
        bulk = open_projection_view(str(tmp_path / "bulk.sqlite"))
        try:
            assert bulk.dump() == live.dump()
        finally:
            bulk.datastore.close()
        # From inside a stream to before its end, in pulls of 7.
        assert await replay(js, in_thread(part), UPSTREAMS[0], 10, 50, batch_size=7) == 50
        assert part.max_tracking_id(UPSTREAMS[0].name) == 50
        expected = open_projection_view(str(tmp_path / "expected.sqlite"))
        try:
            expected.apply(streams[UPSTREAMS[0].name][10:50], Tracking(UPSTREAMS[0].name, 50))
            assert part.dump() == expected.dump()
        finally:
            expected.datastore.close()
    finally:
        part.datastore.close()
        live.datastore.close()
