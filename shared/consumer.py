"""The stream consumer (事件消费): one upstream stream, strictly in order, each message once.

An ordered consumer replays the stream from the position after the consumer's own tracking
record. Each batch of messages is applied in one transaction together with the tracking
record of its last stream sequence, so a message seen again (a redelivery, a restart, a
second replica) is skipped, and a crash between the two cannot happen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from eventsourcing.persistence import IntegrityError, Tracking
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from shared.aio import check_cancelled
from shared.contracts import Contract, Envelope, UndecodableMessage, decode
from shared.messaging import StreamSpec
from shared.observability import CONSUMER_LAG, CONSUMER_POSITION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    """One message of an upstream stream, decoded."""

    sequence: int
    envelope: Envelope
    contract: Contract | None


class TrackedView(Protocol):
    """A read model or process that records how far it got in each upstream stream."""

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        """Apply the messages and record the tracking in one transaction."""


class StreamConsumer:
    """Keeps a view up to date with one upstream stream."""

    def __init__(
        self,
        js: JetStreamContext,
        upstream: StreamSpec,
        view: TrackedView,
        max_batch: int = 1000,
        stall_seconds: float = 2.0,
        on_applied: Callable[[int], None] | None = None,
    ) -> None:
        self._js = js
        self._upstream = upstream
        self._view = view
        self._max_batch = max_batch
        self._stall = stall_seconds
        self._on_applied = on_applied
        self.position = 0
        """Stream sequence of the last message applied."""

    @property
    def tracking_name(self) -> str:
        return self._upstream.name

    async def run(self) -> None:
        """Follow the stream forever, resubscribing after any failure or stall."""
        delay = 0.1
        while True:
            check_cancelled()
            started_at = self.position
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except IntegrityError:
                log.info("%s: position taken by another writer; resubscribing", self.tracking_name)
            except Exception as error:
                if self.position > started_at:
                    delay = 0.1  # it worked for a while: a new failure, not the same one
                log.warning("consumer of %s failed: %r; retrying", self.tracking_name, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def catch_up(self, timeout: float = 30.0) -> int:
        """Apply everything the stream holds now, then return the position (tests, rebuilds)."""
        target = (await self._js.stream_info(self._upstream.name)).state.last_seq
        task = asyncio.create_task(self.run())
        try:
            async with asyncio.timeout(timeout):
                while self.position < target:
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return self.position

    async def _follow(self) -> None:
        self.position = await asyncio.to_thread(self._view.max_tracking_id, self.tracking_name) or 0
        # A bounded buffer: when the view falls behind, the callback waits and JetStream's
        # flow control slows the server down instead of messages piling up in memory.
        buffer: asyncio.Queue[Msg] = asyncio.Queue(maxsize=2 * self._max_batch)
        subscription = await self._js.subscribe(
            f"{self._upstream.service}.>",
            stream=self._upstream.name,
            cb=buffer.put,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.position + 1,
            ),
            idle_heartbeat=1.0,
        )
        try:
            while True:
                check_cancelled()
                batch = await self._next_batch(buffer)
                if batch is None:
                    if await self._stalled():
                        return
                    continue
                await self._apply(batch)
        finally:
            try:
                # Bounded: an ordered consumer being reset by nats-py can leave this waiting
                # forever, and a consumer told to stop must stop.
                async with asyncio.timeout(2):
                    await subscription.unsubscribe()
            except Exception as error:
                log.debug("unsubscribe failed: %r", error)

    async def _next_batch(self, buffer: asyncio.Queue[Msg]) -> list[Msg] | None:
        try:
            # Not asyncio.wait_for: on Python 3.11 it loses a cancellation that arrives
            # together with a message, and a consumer told to stop would go on forever.
            async with asyncio.timeout(self._stall):
                first = await buffer.get()
        except TimeoutError:
            return None
        batch = [first]
        while len(batch) < self._max_batch and not buffer.empty():
            batch.append(buffer.get_nowait())
        return batch

    async def _stalled(self) -> bool:
        """Quiet for a while: fine if the stream has nothing new, a stuck consumer if it has."""
        info = await self._js.stream_info(self._upstream.name)
        if info.state.last_seq > self.position:
            log.info("%s: stream is ahead of a quiet consumer; resubscribing", self.tracking_name)
            return True
        return False

    async def _apply(self, batch: list[Msg]) -> None:
        delivered: list[Delivered] = []
        last = self.position
        for msg in batch:
            sequence = msg.metadata.sequence.stream
            if sequence <= last:
                continue  # seen before: a redelivery changes nothing
            last = sequence
            try:
                envelope, contract = decode(msg.data)
            except UndecodableMessage as error:
                log.error(
                    "%s #%d is not a valid event, skipped: %s", self.tracking_name, sequence, error
                )
                continue
            delivered.append(Delivered(sequence, envelope, contract))
        if last == self.position:
            return
        await asyncio.to_thread(self._view.apply, delivered, Tracking(self.tracking_name, last))
        self.position = last
        view = type(self._view).__name__
        CONSUMER_POSITION.labels(self.tracking_name, view).set(last)
        CONSUMER_LAG.labels(self.tracking_name, view).set(batch[-1].metadata.num_pending)
        if self._on_applied is not None:
            self._on_applied(last)
