"""The read side's consumers (事件消费): one per upstream stream, keeping the live view up to
date, and the switch to a rebuilt view when `shangliang projections rebuild` points at one."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from nats.js import JetStreamContext

from services.projections.rebuild import UPSTREAMS
from services.projections.stores import ViewStore
from shared.consumer import StreamConsumer

log = logging.getLogger(__name__)


class ProjectionProgress:
    """Lets a reader wait until the consumers have applied something new."""

    def __init__(self) -> None:
        self._next = asyncio.Event()

    def applied(self, _position: int) -> None:
        self._next.set()
        self._next = asyncio.Event()

    def next_apply(self) -> asyncio.Event:
        """Take this before reading: it is set by the first apply after the read began."""
        return self._next


POINTER_POLL_SECONDS = 1.0
OLD_VIEW_GRACE_SECONDS = 5.0


class LiveView:
    """The view being served and the consumers that keep it up to date, one per stream.

    After `shangliang projections rebuild` points at a new file (or PostgreSQL schema),
    `follow_pointer` moves everything to it (see services/projections/rebuild.py, stores.py).
    """

    def __init__(self, app: FastAPI, store: ViewStore, progress: ProjectionProgress) -> None:
        self.app = app
        self.store = store
        self.progress = progress
        self.path = store.current()
        self.view = store.open(self.path)
        self.consumers: list[StreamConsumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        app.state.view = self.view

    def start(self, js: JetStreamContext) -> None:
        self.consumers = [
            StreamConsumer(js, spec, self.view, on_applied=self.progress.applied)
            for spec in UPSTREAMS
        ]
        self._tasks = [asyncio.create_task(c.run()) for c in self.consumers]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def follow_pointer(self, js: JetStreamContext) -> None:
        """Switch to the view the pointer names whenever a rebuild changes it."""
        while True:
            await asyncio.sleep(POINTER_POLL_SECONDS)
            try:
                wanted = await asyncio.to_thread(self.store.current)
            except Exception as error:  # PostgreSQL away for a moment: ask again
                log.warning("projections: cannot read the pointer: %r", error)
                continue
            if wanted == self.path or not await asyncio.to_thread(self.store.exists, wanted):
                continue
            log.info("projections: switching to the rebuilt view %s", wanted)
            await self.stop()
            old = self.view
            self.view = await asyncio.to_thread(self.store.open, wanted)
            self.path = wanted
            self.app.state.view = self.view
            self.start(js)
            asyncio.get_running_loop().call_later(OLD_VIEW_GRACE_SECONDS, old.datastore.close)
