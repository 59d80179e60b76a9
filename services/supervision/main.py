"""Supervision's composition root: the event store, consumers of meetings' and intake's
streams, the relay to JetStream, the deadline scheduler, the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import FastAPI

from services.supervision.api import router, scheduler_router
from services.supervision.application import SupervisionApplication, to_contract
from services.supervision.config import SupervisionConfig
from services.supervision.scheduler import Clock, DeadlineScheduler
from shared.auth import Authenticator
from shared.consumer import StreamConsumer
from shared.messaging import (
    INTAKE_STREAM,
    MEETINGS_STREAM,
    SUPERVISION_STREAM,
    connect,
    ensure_stream_with_retry,
)
from shared.observability import install_observability
from shared.process import UpstreamProcessor
from shared.relay import Relay
from shared.settings import Settings
from shared.web import health_router, install_error_handlers, serve


def now_in_utc() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings, config: SupervisionConfig | None = None, clock: Clock = now_in_utc
) -> FastAPI:
    config = config or SupervisionConfig()
    supervision = SupervisionApplication(
        env=settings.event_store_env("supervision"),
        config=config,
        prefecture=settings.prefecture_office,
    )
    scheduler = DeadlineScheduler(supervision, clock, config.scan_interval_seconds)
    state: dict[str, Relay] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, "supervision")
        js = nc.jetstream()
        for stream in (SUPERVISION_STREAM, MEETINGS_STREAM, INTAKE_STREAM):
            # Upstream streams may not exist yet if this service starts first.
            await ensure_stream_with_retry(
                js, stream, settings.stream_replicas, settings.duplicate_window_seconds
            )
        relay = Relay(nc, SUPERVISION_STREAM, supervision, to_contract)
        supervision.saved_listeners.append(relay.wake)
        processor = UpstreamProcessor(supervision, supervision.open_cases)
        consumers = [
            StreamConsumer(js, MEETINGS_STREAM, processor),
            StreamConsumer(js, INTAKE_STREAM, processor),
        ]
        state["relay"] = relay
        tasks = [
            asyncio.create_task(relay.run()),
            asyncio.create_task(supervision.group_commit.run()),
            asyncio.create_task(scheduler.run()),
            *(asyncio.create_task(consumer.run()) for consumer in consumers),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await nc.close()
            supervision.close()

    def not_ready() -> str | None:
        relay = state.get("relay")
        if relay is None or not relay.synced:
            return "relay not yet in step with the supervision stream"
        return None

    app = FastAPI(
        title="Shangliang supervision · 督办",
        description="Supervision cases, letters, deadlines (督办件、督办函、办理时限).",
        lifespan=lifespan,
    )
    app.state.supervision = supervision
    app.state.scheduler = scheduler
    app.state.clock = clock
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    install_observability(app, "supervision")
    app.include_router(health_router(not_ready))
    app.include_router(router)
    app.include_router(scheduler_router)
    return app


def main() -> None:
    config = SupervisionConfig()
    serve(create_app(Settings(), config), config, "supervision")


if __name__ == "__main__":
    main()
