"""Intake's composition root: the event store, the relay to JetStream, the consumers of
supervision and meetings, the HTTP API."""

from __future__ import annotations

import sys

from fastapi import FastAPI
from pydantic import ValidationError
from pydantic_settings import SettingsError

from services.intake import open311_api as open311
from services.intake.api import install_refusal_handlers, router
from services.intake.application import IntakeApplication
from services.intake.consumers import meetings_policy, supervision_policy
from services.intake.hot import HotPath
from services.intake.open311_api import install_open311_handlers
from services.intake.publishing import to_contract
from services.intake.settings import (
    IntakeConfigurationError,
    IntakeSettings,
    cipher_environment,
    tracking_secret,
)
from shared.auth import Authenticator
from shared.limits import install_limits
from shared.observability import install_observability
from shared.process import UpstreamProcessor
from shared.runtime import Publishing, ServiceRuntime
from shared.settings import Settings
from shared.streams import INTAKE_STREAM, MEETINGS_STREAM, SUPERVISION_STREAM
from shared.web import health_router, install_error_handlers, serve


def create_app(settings: Settings, intake_settings: IntakeSettings | None = None) -> FastAPI:
    service = intake_settings or IntakeSettings()
    cipher = cipher_environment(settings, service)
    intake = IntakeApplication(
        env={**settings.event_store_env("intake"), **cipher},
        categories=service.categories,
        tracking_secret=tracking_secret(cipher),
        open311_attributes={
            office: {c: [a.model_dump() for a in attrs] for c, attrs in categories.items()}
            for office, categories in service.open311_attributes.items()
        },
        callback_working_days=service.callback_working_days,
    )
    runtime = ServiceRuntime(
        settings,
        "intake",
        Publishing(INTAKE_STREAM, intake, to_contract),
        upstreams=[
            # On a county office's own server both are copies of the prefecture's, filtered
            # to the county's subjects (shared/streams.py county_streams).
            (SUPERVISION_STREAM, UpstreamProcessor(intake, supervision_policy(intake))),
            (MEETINGS_STREAM, UpstreamProcessor(intake, meetings_policy(intake))),
        ],
        tasks=[intake.warm_up_catalog],
    )

    app = FastAPI(
        title="Shangliang intake · 问题收集",
        description="Outreach activities and issues (委员进基层活动、问题和建议).",
        lifespan=runtime.lifespan,
        # The services report through Prometheus (/metrics). FastAPI's own OpenTelemetry
        # hooks, with no provider configured, only looked for one on every request (3.5 µs
        # of the environment and the global providers, measured).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.intake = intake
    app.state.offices = frozenset(settings.offices)
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    install_refusal_handlers(app)
    # Inside the limits and metrics middlewares, so that its answers are limited and counted.
    install_open311_handlers(app)
    app.add_middleware(HotPath, state=app.state)
    install_limits(
        app, settings, upload_prefixes=("/imports/",), public_prefixes=("/open311/", "/track/")
    )
    install_observability(app, "intake")
    app.include_router(health_router("intake", runtime.not_ready))
    app.include_router(router)
    app.include_router(open311.router)
    app.include_router(open311.keys)
    app.include_router(open311.track)
    return app


def main() -> None:
    try:
        service = IntakeSettings()
        app = create_app(Settings(), service)
    except (IntakeConfigurationError, ValidationError, SettingsError) as error:
        print(f"错误 / error: intake 无法启动 / cannot start: {error}", file=sys.stderr)
        sys.exit(2)
    serve(app, service, "intake")


if __name__ == "__main__":
    main()
