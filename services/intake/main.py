"""Intake's composition root: the event store, the relay to JetStream, the supervision
consumer, the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from fastapi import FastAPI
from pydantic import ValidationError
from pydantic_settings import SettingsError

from services.intake.api import install_refusal_handlers, router
from services.intake.application import IntakeApplication, to_contract
from services.intake.settings import (
    IntakeConfigurationError,
    IntakeServiceSettings,
    cipher_environment,
)
from shared.auth import Authenticator
from shared.consumer import StreamConsumer
from shared.messaging import (
    INTAKE_STREAM,
    SUPERVISION_STREAM,
    connect,
    ensure_stream_with_retry,
)
from shared.observability import install_observability
from shared.process import UpstreamProcessor
from shared.relay import Relay
from shared.settings import Settings
from shared.web import health_router, install_error_handlers, serve


def create_app(settings: Settings, intake_settings: IntakeServiceSettings | None = None) -> FastAPI:
    service = intake_settings or IntakeServiceSettings()
    intake = IntakeApplication(
        env={**settings.event_store_env("intake"), **cipher_environment(settings, service)},
        categories=service.categories,
    )
    state: dict[str, object] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, "intake")
        js = nc.jetstream()
        for stream in (INTAKE_STREAM, SUPERVISION_STREAM):
            # The upstream stream may not exist yet if this service starts first.
            await ensure_stream_with_retry(
                js, stream, settings.stream_replicas, settings.duplicate_window_seconds
            )
        relay = Relay(nc, INTAKE_STREAM, intake, to_contract)
        intake.saved_listeners.append(relay.wake)
        supervision = StreamConsumer(
            js, SUPERVISION_STREAM, UpstreamProcessor(intake, intake.resolve_verified_case)
        )
        state.update(relay=relay, supervision=supervision)
        tasks = [
            asyncio.create_task(relay.run()),
            asyncio.create_task(intake.group_commit.run()),
            asyncio.create_task(supervision.run()),
        ]
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
        if not isinstance(relay, Relay) or not relay.synced:
            return "relay not yet in step with the intake stream"
        if "supervision" not in state:
            return "supervision consumer not started"
        return None

    app = FastAPI(
        title="Shangliang intake · 问题收集",
        description="Outreach activities and issues (委员进基层活动、问题和建议).",
        lifespan=lifespan,
    )
    app.state.intake = intake
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    install_refusal_handlers(app)
    install_observability(app, "intake")
    app.include_router(health_router(not_ready))
    app.include_router(router)
    return app


def main() -> None:
    try:
        service = IntakeServiceSettings()
        app = create_app(Settings(), service)
    except (IntakeConfigurationError, ValidationError, SettingsError) as error:
        print(f"错误 / error: intake 无法启动 / cannot start: {error}", file=sys.stderr)
        sys.exit(2)
    serve(app, service, "intake")


if __name__ == "__main__":
    main()
