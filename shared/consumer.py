"""The stream consumer (事件消费): one upstream stream, strictly in order, each event once.

A view tracks the STORE position of the upstream (the notification id the relay puts in each
message's `Shangliang-Position` header), not the stream sequence: the store is the source of
truth, and a stream can be deleted and created again (sequences restart at 1) or purged and
refilled by the relay (the same events at new sequences). Whatever the stream went through,
an event's position stays the same, so a message whose position the view already recorded is
skipped, and each event is applied exactly once.

An ordered consumer replays the stream from the first message after the view's position,
found by a binary search over the stream (positions grow with sequences in any one stream).
Each batch of messages is applied in one transaction together with the tracking record of
its last position, so a message seen again (a redelivery, a restart, a second replica, a
refilled stream) is skipped, and a crash between the two cannot happen.

The consumer pulls: an ephemeral pull consumer from that first message on (no
acknowledgements), one batch asked for at a time, so what a process holds of a stream is one
batch, however long the backlog. It used to be nats-py's ordered push consumer, and nats-py
answers the server's flow control as a callback's messages arrive, not as they are handled:
a view catching up a long backlog had the server push up to its 32 MB window of messages at
once (76,346 of 100,000 queued, +115 MB in one process), and past nats-py's own limit it
dropped messages as a "slow consumer" while later ones were applied and tracked (a
million-event catch-up lost 350,497 events). A delivery that skips a consumer sequence all
the same (dropped on the way) ends the subscription, to go on from the view's recorded
position before anything after the gap is applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from eventsourcing.persistence import IntegrityError, Tracking
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import DEFAULT_JS_SUB_PENDING_MSGS_LIMIT
from nats.js.errors import NotFoundError
from tenacity import AttemptManager

from shared.aio import check_cancelled, in_thread
from shared.contracts import Contract, Envelope, UndecodableMessage, decode
from shared.messaging import backoff, retry_forever, start_over
from shared.observability import CONSUMER_LAG, CONSUMER_POSITION
from shared.relay import POSITION_HEADER
from shared.streams import StreamSpec

log = logging.getLogger(__name__)

INACTIVE_SECONDS = 30.0


def pulled_from(sequence: int, inactive_seconds: float = INACTIVE_SECONDS) -> ConsumerConfig:
    """An ephemeral pull consumer that delivers the stream in order from `sequence` on, once
    each, without acknowledgements; the server removes it once nobody has pulled for
    `inactive_seconds` (after a crash, or a node's loss)."""
    return ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=sequence,
        ack_policy=AckPolicy.NONE,
        mem_storage=True,
        inactive_threshold=inactive_seconds,
    )


@dataclass(frozen=True)
class Delivered:
    """One message of an upstream stream, decoded."""

    position: int
    """The event's notification id in the upstream store: what views track."""
    envelope: Envelope
    contract: Contract | None


class TrackedView(Protocol):
    """A read model or process that records how far it got in each upstream store."""

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        """Apply the messages and record the tracking in one transaction."""


class DeliveryGap(Exception):
    """A message of the subscription never arrived (dropped on the way): subscribe anew from
    the view's position, before anything after the gap is applied."""


def message_position(headers: dict[str, str] | None) -> int | None:
    value = (headers or {}).get(POSITION_HEADER)
    return None if value is None else int(value)


def position_of(spec: StreamSpec, headers: dict[str, str] | None, sequence: int) -> int | None:
    """Where a message stands among what its readers track: its store position, or in a
    stream gathered from several stores (whose positions interleave) its stream sequence."""
    return sequence if spec.sourced else message_position(headers)


async def last_position(js: JetStreamContext, spec: StreamSpec) -> int:
    """The store position of the stream's last message (0 for an empty stream)."""
    state = (await js.stream_info(spec.name)).state
    if not state.messages:
        return 0
    if spec.sourced:
        return state.last_seq
    last = await js.get_msg(spec.name, seq=state.last_seq)
    return message_position(last.headers) or 0


async def sequence_after(js: JetStreamContext, spec: StreamSpec, position: int) -> int:
    """The stream sequence of the first message whose store position is after `position`
    (one past the last sequence if there is none): where a view at `position` goes on."""
    state = (await js.stream_info(spec.name)).state
    low, high = state.first_seq, state.last_seq + 1
    if not state.messages:
        return high
    if spec.sourced:
        return max(low, min(position + 1, high))
    while low < high:
        middle = (low + high) // 2
        try:
            # `next`: the first message at or after `middle` (a purge can leave holes).
            found = await js.get_msg(spec.name, seq=middle, subject=spec.subjects[0], next=True)
        except NotFoundError:
            high = middle  # nothing from `middle` on
            continue
        assert found.seq is not None
        if (message_position(found.headers) or 0) > position:
            high = middle
        else:
            low = found.seq + 1
    return low


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
        pending_msgs_limit: int = DEFAULT_JS_SUB_PENDING_MSGS_LIMIT,
    ) -> None:
        self._js = js
        self._pending_msgs_limit = pending_msgs_limit
        """What nats-py may hold for this consumer; past it, it drops (a `DeliveryGap`)."""
        self._upstream = upstream
        self._view = view
        self._max_batch = max_batch
        self._stall = stall_seconds
        self._on_applied = on_applied
        self.position = 0
        """Store position of the last event applied (or skipped as already applied)."""
        self._sequence = 0
        """Stream sequence of the last message received by the current subscription."""
        self._delivered = 0
        """Consumer sequence of the last message of the current consumer."""
        self._created: datetime | None = None

    @property
    def sequence(self) -> int:
        """Stream sequence of the last message the current subscription received."""
        return self._sequence

    @property
    def tracking_name(self) -> str:
        return self._upstream.name

    async def run(self) -> None:
        """Follow the stream forever, resubscribing after any failure or stall."""
        async for attempt in retry_forever(
            backoff(0.1, 5.0),
            warn=lambda error, _: log.warning(
                "consumer of %s failed: %r; retrying", self.tracking_name, error
            ),
        ):
            with attempt:
                await self._follow_until_failure(attempt)

    async def _follow_until_failure(self, attempt: AttemptManager) -> None:
        """Follow the stream, resubscribing at once when another writer took a position or
        the stream was created again; any other failure ends the attempt."""
        while True:
            check_cancelled()
            started_at = self.position
            try:
                await self._follow()
            except IntegrityError:
                log.info("%s: position taken by another writer; resubscribing", self.tracking_name)
            except DeliveryGap as gap:
                log.warning(
                    "%s: %s; resubscribing from the view's position", self.tracking_name, gap
                )
            except Exception:
                if self.position > started_at:
                    start_over(attempt)  # it worked for a while: a new failure, not the same one
                raise

    async def catch_up(self, timeout: float = 30.0) -> int:
        """Apply everything the stream holds now, then return the position (tests, rebuilds)."""
        target = await last_position(self._js, self._upstream)
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
        self.position = await in_thread(self._view.max_tracking_id, self.tracking_name) or 0
        self._created = (await self._js.stream_info(self._upstream.name)).created
        start = await sequence_after(self._js, self._upstream, self.position)
        self._sequence = start - 1
        consumer = await self._js.add_consumer(self._upstream.name, config=pulled_from(start))
        assert consumer.name is not None
        self._delivered = 0
        subscription = await self._js.pull_subscribe_bind(
            consumer.name,
            stream=self._upstream.name,
            pending_msgs_limit=self._pending_msgs_limit,
        )
        try:
            while True:
                check_cancelled()
                batch = await self._next_batch(subscription)
                if batch is None:
                    if await self._stalled():
                        return
                    continue
                await self._apply(batch)
        finally:
            try:
                # Bounded: a consumer told to stop must stop, whatever the server does.
                async with asyncio.timeout(2):
                    await subscription.unsubscribe()
                    await self._js.delete_consumer(self._upstream.name, consumer.name)
            except Exception as error:
                log.debug("unsubscribe failed: %r", error)

    async def _next_batch(
        self, subscription: JetStreamContext.PullSubscription
    ) -> list[Msg] | None:
        # fetch waits with asyncio.wait_for, which on Python 3.11 can lose a cancellation that
        # arrives with a message: `_follow` calls check_cancelled at every turn.
        try:
            return await subscription.fetch(self._max_batch, timeout=self._stall)
        except TimeoutError:
            return None

    async def _stalled(self) -> bool:
        """Quiet for a while: fine if the stream has nothing new, a stuck consumer if it has,
        and a lost subscription if the stream is shorter than what it delivered (deleted and
        created again: its sequences started over)."""
        info = await self._js.stream_info(self._upstream.name)
        if info.created != self._created or info.state.last_seq < self._sequence:
            log.warning("%s: the stream was created again; resubscribing", self.tracking_name)
            return True
        if info.state.last_seq > self._sequence and (
            await last_position(self._js, self._upstream) > self.position
        ):
            log.info("%s: stream is ahead of a quiet consumer; resubscribing", self.tracking_name)
            return True
        return False

    async def _apply(self, batch: list[Msg]) -> None:
        delivered: list[Delivered] = []
        last = self.position
        for msg in batch:
            metadata = msg.metadata
            if metadata.sequence.consumer != self._delivered + 1:
                raise DeliveryGap(
                    f"delivery {self._delivered + 1} of consumer {metadata.consumer} never "
                    f"came (the next was {metadata.sequence.consumer})"
                )
            self._delivered = metadata.sequence.consumer
            sequence = metadata.sequence.stream
            self._sequence = sequence
            position = position_of(self._upstream, msg.headers, sequence)
            if position is None:
                log.error("%s #%d has no position, skipped", self.tracking_name, sequence)
                continue
            if position <= last:
                continue  # applied before, from this stream or the one it replaced
            last = position
            try:
                envelope, contract = decode(msg.data)
            except UndecodableMessage as error:
                log.error(
                    "%s #%d is not a valid event, skipped: %s", self.tracking_name, sequence, error
                )
                continue
            delivered.append(Delivered(position, envelope, contract))
        if last == self.position:
            return
        await in_thread(self._view.apply, delivered, Tracking(self.tracking_name, last))
        self.position = last
        view = type(self._view).__name__
        CONSUMER_POSITION.labels(self.tracking_name, view).set(last)
        CONSUMER_LAG.labels(self.tracking_name, view).set(batch[-1].metadata.num_pending)
        if self._on_applied is not None:
            self._on_applied(last)
