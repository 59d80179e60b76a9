"""NATS plumbing (消息总线): connections that never give up, and the streams of
shared/streams.py made to exist."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from shared.counties import CountyServer
from shared.lease import bucket_config
from shared.settings import NatsSettings
from shared.streams import STREAMS, StreamSpec, county_streams, intake_streams

log = logging.getLogger(__name__)


def inbox_prefix(user: str) -> str:
    """Where a user's replies and deliveries arrive: `_INBOX_intake.<id>`."""
    return f"_INBOX_{user}"


class NatsConfigurationError(RuntimeError):
    """No NATS credentials where they are required; the message is meant for the operator."""


async def connect_as(settings: NatsSettings, name: str, reconnect: bool = True) -> Client:
    """Connect as the configured NATS user (`SHANGLIANG_NATS_USER` / `_PASSWORD`); without
    `reconnect`, the first refusal raises (a command gives up, a service never does)."""
    if settings.mode == "production" and not (settings.nats_user and settings.nats_password):
        raise NatsConfigurationError(
            "生产模式需要设置 SHANGLIANG_NATS_USER 和 SHANGLIANG_NATS_PASSWORD / production "
            "mode needs SHANGLIANG_NATS_USER and SHANGLIANG_NATS_PASSWORD (see deploy/README.md)"
        )
    password = settings.nats_password.get_secret_value() if settings.nats_password else None
    return await connect(settings.nats_url, name, settings.nats_user, password, reconnect)


async def connect(
    url: str,
    name: str,
    user: str | None = None,
    password: str | None = None,
    reconnect: bool = True,
) -> Client:
    """Connect and (with `reconnect`) keep reconnecting forever: a service outlives any NATS
    outage.

    `url` may list several servers, comma-separated (the nodes of a cluster), so that a
    service starts while any one of them is down. A user receives on inboxes of its own
    prefix, the only ones its permissions let it subscribe to (shared/nats_access.py).
    """

    async def on_error(error: Exception) -> None:
        log.warning("NATS error (%s): %s", name, error)

    async def on_disconnected() -> None:
        log.warning("NATS disconnected (%s)", name)

    async def on_reconnected() -> None:
        log.info("NATS reconnected (%s)", name)

    return await nats.connect(
        [server.strip() for server in url.split(",") if server.strip()],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        allow_reconnect=reconnect,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        user=user or None,
        password=password if user else None,
        inbox_prefix=inbox_prefix(user) if user else "_INBOX",
    )


async def ensure_stream(
    js: JetStreamContext, spec: StreamSpec, replicas: int = 1, duplicate_window: float = 120.0
) -> None:
    """Create the stream, or bring an existing one to the current configuration."""
    config = spec.config(replicas, duplicate_window)
    try:
        await js.add_stream(config)
    except BadRequestError:
        # The stream exists with another configuration (e.g. a new duplicate window).
        await js.update_stream(config)


async def ensure_stream_with_retry(
    js: JetStreamContext, spec: StreamSpec, replicas: int = 1, duplicate_window: float = 120.0
) -> None:
    """Keep trying while JetStream is not yet reachable (e.g. a cluster still electing)."""
    delay = 0.2
    while True:
        try:
            await ensure_stream(js, spec, replicas, duplicate_window)
            return
        except (TimeoutError, nats.errors.Error) as error:
            log.warning("stream %s not ready yet: %s", spec.name, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def wait_for_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Wait until the stream exists: services do not create the streams, the admin does."""
    delay = 0.2
    while True:
        try:
            await js.stream_info(spec.name)
            return
        except NotFoundError:
            log.warning(
                "stream %s does not exist yet; waiting for the set-up (shangliang nats-setup)",
                spec.name,
            )
        except (TimeoutError, nats.errors.Error) as error:
            log.warning("stream %s not reachable yet: %s", spec.name, error)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def set_up(settings: NatsSettings, js: JetStreamContext) -> None:
    """The admin's job at start-up: every service's stream, the county offices' intake
    (`SHANGLIANG_LEAF_OFFICES`) and the relays' lease bucket. On a county office's own
    server (`SHANGLIANG_COUNTY_OFFICE`), that server's streams instead."""
    county = CountyServer()
    specs = (
        county_streams(county.county_office, county.hub_domain)
        if county.county_office
        else dict.fromkeys((*STREAMS, *intake_streams()))
    )
    for spec in specs:
        await ensure_stream_with_retry(
            js, spec, settings.stream_replicas, settings.duplicate_window_seconds
        )
    delay = 0.2
    while True:
        try:
            await js.create_key_value(bucket_config(replicas=settings.stream_replicas))
            return
        except BadRequestError as error:
            log.warning("lease bucket exists with another configuration, left as is: %s", error)
            return
        except (TimeoutError, nats.errors.Error) as error:
            log.warning("lease bucket not ready yet: %s", error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
