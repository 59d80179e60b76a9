"""Meetings' composition root: the event store, intake's topics, the relay, the HTTP API."""

from __future__ import annotations

from fastapi import FastAPI

from services.meetings.api import router
from services.meetings.application import MeetingsApplication
from services.meetings.consumers import intake_policy
from services.meetings.publishing import to_contract
from services.meetings.reference_api import calendar_router
from services.meetings.reference_api import router as reference_router
from services.meetings.settings import MeetingsSettings
from shared.auth import Authenticator
from shared.limits import install_limits
from shared.observability import install_observability
from shared.process import UpstreamProcessor
from shared.runtime import Publishing, ServiceRuntime
from shared.settings import Settings
from shared.streams import MEETINGS_STREAM, intake_streams
from shared.web import health_router, install_error_handlers, serve


def create_app(settings: Settings) -> FastAPI:
    meetings = MeetingsApplication(
        env=settings.event_store_env("meetings"), offices=settings.offices
    )
    processor = UpstreamProcessor(meetings, intake_policy(meetings))
    runtime = ServiceRuntime(
        settings,
        "meetings",
        Publishing(MEETINGS_STREAM, meetings, to_contract),
        upstreams=[(stream, processor) for stream in intake_streams()],
    )

    app = FastAPI(
        title="Shangliang meetings · 协商会议",
        description="Consultation meetings, their topics, participants and outcomes.",
        lifespan=runtime.lifespan,
    )
    app.state.meetings = meetings
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    install_limits(app, settings)
    install_observability(app, "meetings")
    app.include_router(health_router("meetings", runtime.not_ready))
    app.include_router(router)
    app.include_router(reference_router)
    app.include_router(calendar_router)
    return app


def main() -> None:
    serve(create_app(Settings()), MeetingsSettings(), "meetings")


if __name__ == "__main__":
    main()
