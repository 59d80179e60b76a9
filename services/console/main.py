"""The staff workbench's composition root (工作台): accounts, sessions, the service client and
the pages. It holds no domain state: every rule and refusal stays in the four services."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from pydantic_settings import SettingsError

from services.console import cases, issues, login, meetings
from services.console.accounts import Accounts, AccountStore
from services.console.client import ApiError, ServiceClient
from services.console.session import Sessions
from services.console.settings import ConsoleSettings
from services.console.web import (
    HERE,
    NotLoggedIn,
    Refused,
    api_refused_page,
    not_logged_in,
    refused_page,
)
from shared.limits import install_limits
from shared.observability import install_observability
from shared.settings import Settings
from shared.web import health_router, serve


def accounts_of(settings: Settings, console: ConsoleSettings) -> Accounts:
    """The account store as configured, with the console's lock-out rule."""
    return Accounts(
        AccountStore(settings),
        settings,
        max_failed=console.max_failed_logins,
        lockout_seconds=console.lockout_seconds,
    )


def create_app(settings: Settings, console: ConsoleSettings) -> FastAPI:
    service_client = ServiceClient(settings, console)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await service_client.aclose()

    app = FastAPI(
        title="Shangliang console · 工作台",
        description="The staff workbench: pages over the four services' APIs.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.console_settings = console
    app.state.accounts = accounts_of(settings, console)
    app.state.sessions = Sessions(settings, console.session_ttl_seconds)
    app.state.client = service_client
    app.add_exception_handler(NotLoggedIn, not_logged_in)
    app.add_exception_handler(Refused, refused_page)
    app.add_exception_handler(ApiError, api_refused_page)
    install_limits(app, settings, upload_prefixes=("/imports",))
    install_observability(app, "console")
    app.include_router(health_router("console", lambda: None))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in (login.router, issues.router, cases.router, meetings.router):
        app.include_router(router)
    return app


def main() -> None:
    # httpx logs every call at INFO: one line per page is the metrics' job, not the log's.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        console = ConsoleSettings()
        app = create_app(Settings(), console)
    except (ValidationError, SettingsError) as error:
        print(f"错误 / error: console 无法启动 / cannot start: {error}", file=sys.stderr)
        sys.exit(2)
    serve(app, console, "console")


if __name__ == "__main__":
    main()
