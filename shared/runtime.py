"""What a service runs beside its HTTP API (服务运行时): the NATS connection, the relay of its
own stream (under a lease, so that of several replicas one publishes), the consumers of its
upstream streams, group commit and any task of its own, started and stopped with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from fastapi import FastAPI
from nats.js import JetStreamContext

from shared.consumer import StreamConsumer, TrackedView
from shared.eventstore import ServiceApplication
from shared.lease import Lease, relay_lease
from shared.messaging import connect_as, wait_for_stream
from shared.relay import Relay, Translate
from shared.settings import Settings
from shared.streams import StreamSpec


@dataclass
class Publishing:
    """A service's own stream, filled from its application's notification log."""

    stream: StreamSpec
    application: ServiceApplication
    translate: Translate


@dataclass
class ServiceRuntime:
    """Give `lifespan` to FastAPI and `not_ready` to the readiness probe."""

    settings: Settings
    name: str
    publishing: Publishing | None = None
    upstreams: Sequence[tuple[StreamSpec, TrackedView]] = ()
    tasks: Sequence[Callable[[], Awaitable[None]]] = ()
    on_applied: Callable[[int], None] | None = None
    on_stop: Callable[[], None] | None = None
    relay: Relay | None = field(default=None, init=False)
    lease: Lease | None = field(default=None, init=False)
    consumers: list[StreamConsumer] = field(default_factory=list, init=False)
    js: JetStreamContext | None = field(default=None, init=False)

    @contextlib.asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        settings = self.settings
        nc = await connect_as(settings, self.name)
        self.js = js = nc.jetstream()
        own = [self.publishing.stream] if self.publishing else []
        # The admin creates the streams at start-up; this service's user may not.
        for stream in [*own, *(s for s, _ in self.upstreams)]:
            await wait_for_stream(js, stream)
        jobs: list[Awaitable[None]] = []
        if self.publishing is not None:
            app = self.publishing.application
            self.relay = Relay(
                nc,
                self.publishing.stream,
                app,
                self.publishing.translate,
                replicas=settings.stream_replicas,
                duplicate_window_seconds=settings.duplicate_window_seconds,
            )
            app.saved_listeners.append(self.relay.wake)
            self.lease = Lease(js, relay_lease(self.name), replicas=settings.stream_replicas)
            jobs += [self.lease.run(self.relay.run), app.group_commit.run()]
        self.consumers = [
            StreamConsumer(js, stream, view, on_applied=self.on_applied)
            for stream, view in self.upstreams
        ]
        jobs += [consumer.run() for consumer in self.consumers]
        jobs += [task() for task in self.tasks]
        running = [asyncio.create_task(job) for job in jobs]  # type: ignore[arg-type]
        try:
            yield
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await nc.close()
            if self.on_stop is not None:
                self.on_stop()
            if self.publishing is not None:
                self.publishing.application.close()

    def not_ready(self) -> str | None:
        if self.js is None:
            return "not connected to NATS yet"
        # A standby replica serves requests; only the lease holder must be in step.
        holds_lease = self.lease is not None and self.lease.held
        if holds_lease and self.relay is not None and not self.relay.synced:
            return "relay not yet in step with the service's stream"
        return None
