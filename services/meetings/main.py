"""Meetings' composition root: the event store, intake's topics, the relay, the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.meetings.api import router
from services.meetings.application import MeetingsApplication
from services.meetings.consumers import intake_policy
from services.meetings.publishing import to_contract
from services.meetings.reference_api import calendar_router
from services.meetings.reference_api import router as reference_router
from shared.auth import Authenticator
from shared.consumer import StreamConsumer
from shared.messaging import INTAKE_STREAM, MEETINGS_STREAM, connect, ensure_stream_with_retry
from shared.observability import install_observability
from shared.process import UpstreamProcessor
from shared.relay import Relay
from shared.settings import MeetingsSettings, Settings
from shared.web import health_router, install_error_handlers, serve


def create_app(settings: Settings) -> FastAPI:
    meetings = MeetingsApplication(
        env=settings.event_store_env("meetings"), offices=settings.offices
    )
    state: dict[str, Relay | StreamConsumer] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, "meetings")
        js = nc.jetstream()
        for stream in (MEETINGS_STREAM, INTAKE_STREAM):
            await ensure_stream_with_retry(
                js, stream, settings.stream_replicas, settings.duplicate_window_seconds
            )
        relay = Relay(nc, MEETINGS_STREAM, meetings, to_contract)
        meetings.saved_listeners.append(relay.wake)
        topics = StreamConsumer(
            js, INTAKE_STREAM, UpstreamProcessor(meetings, intake_policy(meetings))
        )
        state.update(relay=relay, intake=topics)
        tasks = [
            asyncio.create_task(relay.run()),
            asyncio.create_task(topics.run()),
            asyncio.create_task(meetings.group_commit.run()),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await nc.close()
            meetings.close()

    def not_ready() -> str | None:
        relay = state.get("relay")
        if not isinstance(relay, Relay) or not relay.synced:
            return "relay not yet in step with the meetings stream"
        if "intake" not in state:
            return "intake consumer not started"
        return None

    app = FastAPI(
        title="Shangliang meetings · 协商会议",
        description="Consultation meetings, their topics, participants and outcomes.",
        lifespan=lifespan,
    )
    app.state.meetings = meetings
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    install_observability(app, "meetings")
    app.include_router(health_router(not_ready))
    app.include_router(router)
    app.include_router(reference_router)
    app.include_router(calendar_router)
    return app


def main() -> None:
    serve(create_app(Settings()), MeetingsSettings(), "meetings")


if __name__ == "__main__":
    main()
