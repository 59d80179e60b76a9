"""NATS plumbing (消息总线): connections that never give up, and the streams of
shared/streams.py made to exist."""

from __future__ import annotations

import logging
from collections.abc import Callable

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError
from tenacity import (
    AsyncRetrying,
    AttemptManager,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential,
)

from shared.lease import bucket_config
from shared.settings import CountyServer, NatsSettings
from shared.streams import STREAMS, StreamSpec, county_streams, intake_streams

log = logging.getLogger(__name__)


Backoff = Callable[[RetryCallState], float]
"""How long to wait after a failed attempt (a tenacity wait)."""


def backoff(first: float, cap: float) -> Backoff:
    """Wait `first` seconds after the first failure, twice as long after each next one, at
    most `cap` seconds."""
    return wait_exponential(multiplier=first, max=cap)


def retry_forever(
    wait: Backoff,
    on: type[Exception] | tuple[type[Exception], ...] = Exception,
    warn: Callable[[BaseException, float], None] | None = None,
) -> AsyncRetrying:
    """Attempts that go on while they fail with one of `on`, each after the wait `wait`
    gives; `warn(error, seconds)` tells the log of a failure before that wait. Any other
    failure (a cancellation too) is raised as it is.

        async for attempt in retry_forever(backoff(0.2, 5.0), on=TimeoutError):
            with attempt:
                await try_once()
    """

    def before_sleep(state: RetryCallState) -> None:
        if warn is not None and state.outcome is not None:
            warn(state.outcome.exception(), state.upcoming_sleep)

    return AsyncRetrying(
        retry=retry_if_exception_type(on), wait=wait, before_sleep=before_sleep, reraise=True
    )


def start_over(attempt: AttemptManager) -> None:
    """Count the running attempt as the first one again: it got somewhere, so a failure now
    is a new one, and the wait after it is the first wait, not a longer one."""
    attempt.retry_state.attempt_number = 1


def until_nats_answers(warn: Callable[[BaseException, float], None]) -> AsyncRetrying:
    """Attempts at a NATS request that go on while the server does not answer or refuses
    (0.2 s, doubling up to 5 s), as at start-up while a cluster still elects its leaders."""
    return retry_forever(backoff(0.2, 5.0), on=(TimeoutError, nats.errors.Error), warn=warn)


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
    async for attempt in until_nats_answers(
        lambda error, _: log.warning("stream %s not ready yet: %s", spec.name, error)
    ):
        with attempt:
            await ensure_stream(js, spec, replicas, duplicate_window)


async def wait_for_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Wait until the stream exists: services do not create the streams, the admin does."""

    def warn(error: BaseException, _: float) -> None:
        if isinstance(error, NotFoundError):
            log.warning(
                "stream %s does not exist yet; waiting for the set-up (shangliang nats-setup)",
                spec.name,
            )
        else:
            log.warning("stream %s not reachable yet: %s", spec.name, error)

    async for attempt in until_nats_answers(warn):  # NotFoundError is a NATS error too
        with attempt:
            await js.stream_info(spec.name)


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
    async for attempt in until_nats_answers(
        lambda error, _: log.warning("lease bucket not ready yet: %s", error)
    ):
        with attempt:
            try:
                await js.create_key_value(bucket_config(replicas=settings.stream_replicas))
            except BadRequestError as error:
                log.warning("lease bucket exists with another configuration, left as is: %s", error)
