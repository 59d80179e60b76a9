"""Intake's composition root: the event store, the relay to JetStream, the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.intake.api import router
from services.intake.application import IntakeApplication, to_contract
from shared.auth import Authenticator
from shared.messaging import INTAKE_STREAM, connect, ensure_stream_with_retry
from shared.relay import Relay
from shared.settings import IntakeSettings, Settings
from shared.web import health_router, install_error_handlers, serve


def create_app(settings: Settings) -> FastAPI:
    intake = IntakeApplication(env=settings.event_store_env("intake"))
    state: dict[str, Relay] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, "intake")
        js = nc.jetstream()
        await ensure_stream_with_retry(
            js, INTAKE_STREAM, settings.stream_replicas, settings.duplicate_window_seconds
        )
        relay = Relay(nc, INTAKE_STREAM, intake, to_contract)
        intake.saved_listeners.append(relay.wake)
        state["relay"] = relay
        tasks = [asyncio.create_task(relay.run()), asyncio.create_task(intake.group_commit.run())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await nc.close()
            intake.close()

    def not_ready() -> str | None:
        relay = state.get("relay")
        if relay is None or not relay.synced:
            return "relay not yet in step with the intake stream"
        return None

    app = FastAPI(
        title="Shangliang intake · 问题收集",
        description="Outreach activities and issues (委员进基层活动、问题和建议).",
        lifespan=lifespan,
    )
    app.state.intake = intake
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    app.include_router(health_router(not_ready))
    app.include_router(router)
    return app


def main() -> None:
    serve(create_app(Settings()), IntakeSettings())


if __name__ == "__main__":
    main()
