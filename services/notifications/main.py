"""The notifications' composition root: consumers of the streams, the sender and scheduler
under one lease, the HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from services.notifications.api import router
from services.notifications.application import NotificationsApplication, Sender
from services.notifications.channels import Channels
from services.notifications.consumers import start_consumers, streams_behind
from services.notifications.domain import QuietHours
from services.notifications.scheduler import ReminderScheduler
from services.notifications.settings import NotificationsSettings
from services.notifications.store import open_store
from shared.auth import Authenticator
from shared.lease import Lease
from shared.limits import install_limits
from shared.messaging import connect_as
from shared.nats_access import NOTIFICATIONS_LEASE
from shared.observability import install_observability
from shared.settings import Settings
from shared.web import health_router, install_error_handlers, serve

log = logging.getLogger(__name__)

SENDER_LEASE = NOTIFICATIONS_LEASE
"""Of several replicas, the one holding this lease sends and schedules; all consume."""


def create_app(settings: Settings, config: NotificationsSettings) -> FastAPI:
    store = open_store(settings, config.office_names)
    application = NotificationsApplication(store, quiet=QuietHours.parse(config.quiet_hours))
    started: list[object] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect_as(settings, "notifications")
        js = nc.jetstream()
        http = httpx.AsyncClient()
        channels = Channels(config, http)
        sender = Sender(store, channels, config)
        scheduler = ReminderScheduler(store, config, settings.offices, settings.prefecture_office)

        async def send_and_schedule() -> None:
            await asyncio.gather(sender.run(), scheduler.run())

        consumers, tasks = await start_consumers(js, store)
        application.behind = lambda: streams_behind(js, consumers)
        lease = Lease(js, SENDER_LEASE, replicas=settings.stream_replicas)
        tasks.append(asyncio.create_task(lease.run(send_and_schedule)))
        app.state.sender, app.state.scheduler, app.state.lease = sender, scheduler, lease
        started.extend(consumers)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            sender.close()
            await channels.close()
            await http.aclose()
            await nc.close()
            store.datastore.close()

    def not_ready() -> str | None:
        return None if started else "consumers not started"

    app = FastAPI(
        title="Shangliang notifications · 通知",
        description="Reminders, letters and invitations by email and office robots "
        "(督办提醒、督办函、会议邀请：邮件与群机器人).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.application = application
    app.state.authenticator = Authenticator(settings)
    install_error_handlers(app)
    install_limits(app, settings)
    install_observability(app, "notifications")
    app.include_router(health_router("notifications", not_ready))
    app.include_router(router)
    return app


def main() -> None:
    config = NotificationsSettings()
    serve(create_app(Settings(), config), config, "notifications")


if __name__ == "__main__":
    main()
