"""Supervision's composition root: the event store, consumers of meetings' and intake's
streams, the relay to JetStream, the deadline scheduler, the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from services.supervision.api import router, scheduler_router
from services.supervision.application import SupervisionApplication
from services.supervision.consumers import upstream_policy
from services.supervision.publishing import to_contract
from services.supervision.scheduler import Clock, DeadlineScheduler
from services.supervision.settings import SupervisionSettings
from shared.auth import Authenticator
from shared.limits import install_limits
from shared.observability import install_observability
from shared.process import UpstreamProcessor
from shared.runtime import Publishing, ServiceRuntime
from shared.settings import Settings
from shared.streams import MEETINGS_STREAM, SUPERVISION_STREAM, intake_streams
from shared.web import health_router, install_error_handlers, serve


def now_in_utc() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings, config: SupervisionSettings | None = None, clock: Clock = now_in_utc
) -> FastAPI:
    config = config or SupervisionSettings()
    supervision = SupervisionApplication(
        env=settings.event_store_env("supervision"),
        config=config,
        prefecture=settings.prefecture_office,
    )
    scheduler = DeadlineScheduler(supervision, clock, config.scan_interval_seconds)
    processor = UpstreamProcessor(supervision, upstream_policy(supervision))
    runtime = ServiceRuntime(
        settings,
        "supervision",
        Publishing(SUPERVISION_STREAM, supervision, to_contract),
        upstreams=[
            (MEETINGS_STREAM, processor),
            *((stream, processor) for stream in intake_streams()),
        ],
        tasks=[scheduler.run],
    )

    app = FastAPI(
        title="Shangliang supervision · 督办",
        description="Supervision cases, letters, deadlines (督办件、督办函、办理时限).",
        lifespan=runtime.lifespan,
    )
    app.state.supervision = supervision
    app.state.scheduler = scheduler
    app.state.clock = clock
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    install_limits(app, settings)
    install_observability(app, "supervision")
    app.include_router(health_router("supervision", runtime.not_ready))
    app.include_router(router)
    app.include_router(scheduler_router)
    return app


def main() -> None:
    config = SupervisionSettings()
    serve(create_app(Settings(), config), config, "supervision")


if __name__ == "__main__":
    main()
