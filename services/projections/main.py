"""The read side's composition root: consumers of the three streams, the view, HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from nats.js import JetStreamContext

from services.projections.api import ProjectionProgress, StatisticsCache, router
from services.projections.dashboard import router as dashboard_router
from services.projections.hot import CachedStatistics
from services.projections.rebuild import UPSTREAMS
from services.projections.settings import ProjectionsSettings
from services.projections.stores import ViewStore, view_store
from shared.auth import Authenticator
from shared.consumer import StreamConsumer
from shared.limits import install_limits
from shared.messaging import connect_as, wait_for_stream
from shared.observability import install_observability
from shared.settings import Settings
from shared.web import health_router, install_error_handlers, serve

log = logging.getLogger(__name__)

ROUTERS: list[APIRouter] = [router, dashboard_router]
"""The read side's routers; the dashboard adds its own here."""

POINTER_POLL_SECONDS = 1.0
OLD_VIEW_GRACE_SECONDS = 5.0


class LiveView:
    """The view being served and the consumers that keep it up to date, one per stream.

    After `shangliang projections rebuild` points at a new file (or PostgreSQL schema),
    `follow_pointer` moves everything to it (see services/projections/rebuild.py, stores.py).
    """

    def __init__(self, app: FastAPI, store: ViewStore, progress: ProjectionProgress) -> None:
        self.app = app
        self.store = store
        self.progress = progress
        self.path = store.current()
        self.view = store.open(self.path)
        self.consumers: list[StreamConsumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        app.state.view = self.view

    def start(self, js: JetStreamContext) -> None:
        self.consumers = [
            StreamConsumer(js, spec, self.view, on_applied=self.progress.applied)
            for spec in UPSTREAMS
        ]
        self._tasks = [asyncio.create_task(c.run()) for c in self.consumers]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def follow_pointer(self, js: JetStreamContext) -> None:
        """Switch to the view the pointer names whenever a rebuild changes it."""
        while True:
            await asyncio.sleep(POINTER_POLL_SECONDS)
            try:
                wanted = await asyncio.to_thread(self.store.current)
            except Exception as error:  # PostgreSQL away for a moment: ask again
                log.warning("projections: cannot read the pointer: %r", error)
                continue
            if wanted == self.path or not await asyncio.to_thread(self.store.exists, wanted):
                continue
            log.info("projections: switching to the rebuilt view %s", wanted)
            await self.stop()
            old = self.view
            self.view = await asyncio.to_thread(self.store.open, wanted)
            self.path = wanted
            self.app.state.view = self.view
            self.start(js)
            asyncio.get_running_loop().call_later(OLD_VIEW_GRACE_SECONDS, old.datastore.close)


def create_app(settings: Settings) -> FastAPI:
    progress = ProjectionProgress()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect_as(settings, "projections")
        js = nc.jetstream()
        # The admin creates the streams at start-up; this service's user may not.
        for spec in UPSTREAMS:
            await wait_for_stream(js, spec)
        live.start(js)
        follow = asyncio.create_task(live.follow_pointer(js))
        try:
            yield
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
            await live.stop()
            await nc.close()
            live.view.datastore.close()

    def not_ready() -> str | None:
        return None if live.consumers else "consumers not started"

    app = FastAPI(
        title="Shangliang projections · 查询统计",
        description="Issue status and yearly statistics (问题状态、年度统计), read-only.",
        lifespan=lifespan,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    live = LiveView(app, view_store(settings), progress)
    app.state.settings = settings
    app.state.progress = progress
    app.state.statistics_cache = StatisticsCache()
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    # Inside the metrics middleware, so that cached answers are counted and carry a request id.
    app.add_middleware(CachedStatistics, state=app.state)
    install_limits(app, settings)
    install_observability(app, "projections")
    app.include_router(health_router(not_ready))
    for extra in ROUTERS:
        app.include_router(extra)
    return app


def main() -> None:
    serve(create_app(Settings()), ProjectionsSettings(), "projections")


if __name__ == "__main__":
    main()
