"""The read side's composition root: consumers of the services' streams, views, HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.projections.api import ProjectionProgress, router
from services.projections.views import open_issue_status_view
from shared.auth import Authenticator
from shared.consumer import StreamConsumer
from shared.messaging import INTAKE_STREAM, connect, ensure_stream_with_retry
from shared.settings import ProjectionsSettings, Settings
from shared.web import health_router, install_error_handlers, serve


def create_app(settings: Settings) -> FastAPI:
    view = open_issue_status_view(str(settings.data_file("projections.sqlite")))
    progress = ProjectionProgress()
    state: dict[str, StreamConsumer] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, "projections")
        js = nc.jetstream()
        # The upstream stream may not exist yet if this service starts first.
        await ensure_stream_with_retry(
            js, INTAKE_STREAM, settings.stream_replicas, settings.duplicate_window_seconds
        )
        consumer = StreamConsumer(js, INTAKE_STREAM, view, on_applied=progress.applied)
        state["intake"] = consumer
        task = asyncio.create_task(consumer.run())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await nc.close()
            view.datastore.close()

    def not_ready() -> str | None:
        return None if "intake" in state else "consumers not started"

    app = FastAPI(
        title="Shangliang projections · 查询统计",
        description="Issue status and yearly statistics (问题状态、年度统计), read-only.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.view = view
    app.state.progress = progress
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    app.include_router(health_router(not_ready))
    app.include_router(router)
    return app


def main() -> None:
    serve(create_app(Settings()), ProjectionsSettings())


if __name__ == "__main__":
    main()
