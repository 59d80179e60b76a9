"""The read side's composition root: the live view and its consumers, the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI

from services.projections.api import StatisticsCache, router
from services.projections.consumers import LiveView, ProjectionProgress
from services.projections.dashboard import router as dashboard_router
from services.projections.hot import CachedStatistics
from services.projections.rebuild import UPSTREAMS
from services.projections.settings import ProjectionsSettings
from services.projections.stores import view_store
from shared.auth import Authenticator
from shared.limits import install_limits
from shared.messaging import connect_as, wait_for_stream
from shared.observability import install_observability
from shared.settings import Settings
from shared.web import health_router, install_error_handlers, serve

ROUTERS: list[APIRouter] = [router, dashboard_router]
"""The read side's routers; the dashboard adds its own here."""


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
    app.include_router(health_router("projections", not_ready))
    for extra in ROUTERS:
        app.include_router(extra)
    return app


def main() -> None:
    serve(create_app(Settings()), ProjectionsSettings(), "projections")


if __name__ == "__main__":
    main()
