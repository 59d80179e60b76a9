"""The running read side keeps answering during a rebuild and moves to the rebuilt file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from nats.aio.client import Client

from services.projections.main import create_app
from services.projections.rebuild import live_file, rebuild
from shared.auth import Authenticator
from shared.embedded import EmbeddedNats
from shared.settings import Settings
from tests.support.history import history
from tests.support.streams import publish_history
from tests.support.waiting import wait_until


async def test_the_service_switches_to_a_rebuilt_view_and_follows_the_streams_there(
    nats_server: EmbeddedNats, nats_client: Client, tmp_path: Path
) -> None:
    js = nats_client.jetstream()
    streams = history(200, seed=21)
    half = {s: m[: len(m) // 2] for s, m in streams.items()}
    rest = {s: m[len(m) // 2 :] for s, m in streams.items()}
    await publish_history(js, half)
    settings = Settings(data_dir=tmp_path / "data", nats_url=nats_server.url)
    app = create_app(settings)
    token = Authenticator(settings).mint("yanbian", ["viewer"])

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://projections",
            headers={"Authorization": f"Bearer {token}"},
        ) as client,
    ):

        async def total() -> dict[str, Any]:
            response = await client.get("/statistics/2020")
            assert response.status_code == 200, response.text
            return dict(response.json()["total"])

        async def collected(n: int) -> bool:
            return (await total())["issues_collected"] + (
                await client.get("/statistics/2021")
            ).json()["total"]["issues_collected"] == n

        def applied(part: dict[str, list[Any]]) -> bool:
            view = app.state.view
            return all(view.max_tracking_id(s) == len(m) for s, m in part.items())

        await wait_until(lambda: applied(half), timeout=20, what="the first half applied")
        before = await total()
        old_view = app.state.view

        rebuilt = await rebuild(js, settings.data_dir)
        assert live_file(settings.data_dir) == rebuilt
        await wait_until(lambda: app.state.view is not old_view, timeout=10, what="the switch")
        assert await total() == before

        await publish_history(js, rest)
        await wait_until(lambda: applied(streams), timeout=20, what="the rest applied after it")
        assert await collected(200)
        everything = app.state.view.dump()
        assert app.state.view.max_tracking_id("INTAKE") == len(streams["INTAKE"])
        assert everything["issue_status"] and len(everything["issue_status"]) == 200
