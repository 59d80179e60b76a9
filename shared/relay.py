"""The outbox relay (事件转发): from an application's notification log to its JetStream stream.

Each stored event is published once and in the order of the notification log:

- every message carries `Nats-Msg-Id` = the event's stable id, so a re-publish inside the
  duplicate window is dropped by the server;
- every message carries `Nats-Expected-Last-Sequence`, so the stream accepts it only
  directly after the message before it. A message lost in an outage makes all later ones
  bounce instead of overtaking it, and a second relay racing this one is refused;
- every message carries its notification id (`Shangliang-Position`), so after any failure
  or restart the relay reads the stream's last message and resumes right after it, whether
  or not the duplicate window still remembers.

The store heals the stream: a stream that was deleted is created again, and one that lost
messages (purged, or truncated by a node that had not fsynced) is refilled from the store.
A purge keeps the stream's last sequence, so publishing goes on as if nothing happened: the
relay therefore looks at the stream's first message and its count at every resync and about
once a second while it runs. When a message is missing in the middle, or the first message
comes after a stored event that is published, the relay purges what is left and publishes
the store again from its start, in order (consumers skip the positions they already have,
and a rebuild from the stream sees every event). When the server's duplicate window still
remembers the lost messages' ids it would answer "duplicate" without storing them; the
relay then publishes under ids qualified by the stream's new first sequence, which the
window has never seen. Consumers recognise events by the envelope's id, which never changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import Header, PubAck, StreamState
from nats.js.errors import NotFoundError
from tenacity import AttemptManager, RetryCallState

from shared.aio import check_cancelled, in_thread
from shared.audit import audited_event
from shared.contracts import Contract, Envelope
from shared.messaging import backoff, ensure_stream, retry_forever, start_over
from shared.observability import EVENTS_RELAYED, RELAY_POSITION
from shared.streams import StreamSpec

log = logging.getLogger(__name__)

POSITION_HEADER = "Shangliang-Position"

Translate = Callable[[Any], tuple[str, Contract] | None]
"""Maps a stored domain event to (office, contract), or None if it is not published."""


def event_id(originator_id: UUID, originator_version: int) -> str:
    """A stable id per stored event: the same event always gets the same message id."""
    return str(uuid5(NAMESPACE_URL, f"shangliang:{originator_id}:{originator_version}"))


class StreamBehind(Exception):
    """The stream did not take a message right after the previous one; resync from it."""

    def __init__(self, reason: str, duplicate_of: int | None = None) -> None:
        super().__init__(reason)
        self.duplicate_of = duplicate_of
        """For a message the server called a duplicate: the sequence it named."""


_RESYNC_BACKOFF = backoff(0.1, 1.0)
_FAILURE_BACKOFF = backoff(0.1, 5.0)


def _relay_backoff(state: RetryCallState) -> float:
    """After a stream that did not take a message in order, resync soon (at most 1 s
    apart); after a failure, wait up to 5 s."""
    behind = state.outcome is not None and isinstance(state.outcome.exception(), StreamBehind)
    return (_RESYNC_BACKOFF if behind else _FAILURE_BACKOFF)(state)


@dataclass
class _Outgoing:
    position: int
    subject: str
    payload: bytes
    msg_id: str


class Relay:
    """Follows one application's notification log and publishes it to the service's stream."""

    def __init__(
        self,
        nc: Client,
        stream: StreamSpec,
        application: Application[Any],
        translate: Translate,
        batch_size: int = 500,
        idle_poll_seconds: float = 1.0,
        ack_timeout_seconds: float = 5.0,
        replicas: int = 1,
        duplicate_window_seconds: float = 120.0,
        check_seconds: float = 1.0,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._stream = stream
        self._app = application
        self._translate = translate
        self._batch_size = batch_size
        self._idle_poll = idle_poll_seconds
        self._ack_timeout = ack_timeout_seconds
        self._replicas = replicas
        self._duplicate_window = duplicate_window_seconds
        self._check_seconds = check_seconds
        self._checked_at = 0.0
        self._complete_from: int | None = None
        """The first sequence of the stream when it was last found complete."""
        self._msg_id_suffix = ""
        self._news = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.position = 0
        """Notification id of the last event that is in the stream (or was skipped)."""
        self._last_seq = 0
        self.synced = False
        self._inbox: str | None = None
        self._replies: dict[str, asyncio.Future[Msg]] = {}
        self._reply_numbers = itertools.count()

    def wake(self) -> None:
        """Tell the relay that new events were stored; safe to call from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._news.set)

    async def run(self) -> None:
        """Publish forever; any failure leads back to a resync with the stream, after a wait
        that is the first one again once a turn went through."""
        self._loop = asyncio.get_running_loop()

        def warn(error: BaseException, seconds: float) -> None:
            if not isinstance(error, StreamBehind):
                log.warning(
                    "relay %s failed, retrying in %.1fs: %r", self._stream.name, seconds, error
                )

        async for attempt in retry_forever(_relay_backoff, warn=warn):
            with attempt:
                await self._publish_until_failure(attempt)

    async def _publish_until_failure(self, attempt: AttemptManager) -> None:
        """Resync, then publish what is stored as it comes; each turn that went through
        makes the next wait the first again."""
        while True:
            check_cancelled()
            try:
                await self.resync()
                while True:
                    check_cancelled()
                    self._news.clear()
                    if time.monotonic() - self._checked_at >= self._check_seconds:
                        await self._check_complete()
                    if await self.publish_batch() == 0:
                        await self._wait_for_news()
                    start_over(attempt)
            except StreamBehind as error:
                log.info("relay %s resyncs: %s", self._stream.name, error)
                if error.duplicate_of is None or not await self._lost(error.duplicate_of):
                    raise
                # the stream lost it: republish at once, under ids the duplicate window never saw
            except Exception:
                self.synced = False
                raise

    async def publish_all(self) -> int:
        """Resync, then publish until the stream holds every stored event (tests, tools)."""
        await self.resync()
        total = 0
        while count := await self.publish_batch():
            total += count
        return total

    async def resync(self) -> None:
        """Learn from the stream itself how far publishing got."""
        name = self._stream.name
        try:
            info = await self._js.stream_info(name)
        except NotFoundError:
            log.warning("relay %s: the stream is gone; creating it again", name)
            await ensure_stream(self._js, self._stream, self._replicas, self._duplicate_window)
            info = await self._js.stream_info(name)
        if await self._lost_messages(info.state):
            await self._purge_for_refill(info.state)
            info = await self._js.stream_info(name)
        self._complete_from = info.state.first_seq
        self._checked_at = time.monotonic()
        self._last_seq = info.state.last_seq
        self.position = 0
        if info.state.messages:
            message = await self._js.get_msg(name, seq=self._last_seq)
            headers = message.headers or {}
            if POSITION_HEADER not in headers:
                raise RuntimeError(f"last message of {name} has no {POSITION_HEADER} header")
            self.position = int(headers[POSITION_HEADER])
        self.synced = True

    async def _check_complete(self) -> None:
        """While running: resync if the stream lost messages since the last look."""
        self._checked_at = time.monotonic()
        state = (await self._js.stream_info(self._stream.name)).state
        if state.first_seq == self._complete_from and not _holes(state):
            return  # as complete as before, plus what this relay appended in order
        if await self._lost_messages(state):
            raise StreamBehind("the stream lost messages (purged?); refilling it")
        self._complete_from = state.first_seq

    async def _lost_messages(self, state: StreamState) -> bool:
        """Does the stream miss an event the store has published? Messages go in strictly
        one after the other, so one missing in the middle leaves a hole in the sequences,
        and ones missing at the start leave a published event before the first message."""
        if _holes(state):
            return True
        if state.messages:
            first = await self._js.get_msg(self._stream.name, seq=state.first_seq)
            before = int((first.headers or {}).get(POSITION_HEADER, 0))
        else:
            before = self.position + 1  # all this relay published is gone
        return await in_thread(self._publishes_before, before)

    def _publishes_before(self, position: int) -> bool:
        """Whether a stored event before `position` is one the relay publishes."""
        start = 0
        while start < position - 1:
            notifications = self._app.recorder.select_notifications(
                start, self._batch_size, stop=position - 1, inclusive_of_start=False
            )
            if not notifications:
                return False
            if any(self._prepare(n) is not None for n in notifications):
                return True
            start = notifications[-1].id
        return False

    async def _purge_for_refill(self, state: StreamState) -> None:
        """Empty the stream so that it is published again from the store's start in order;
        under ids the duplicate window has not seen (qualified by the new first sequence)."""
        log.warning(
            "relay %s: the stream lost messages (first %d, last %d, %d held); refilling it "
            "from the store",
            self._stream.name,
            state.first_seq,
            state.last_seq,
            state.messages,
        )
        if state.messages:
            await self._js.purge_stream(self._stream.name, seq=state.last_seq + 1)
        self._msg_id_suffix = f"~{state.last_seq + 1}"

    async def _lost(self, sequence: int) -> bool:
        """Is the message the server called a duplicate missing from the stream? If so, the
        stream lost it: qualify message ids by the stream's current first sequence."""
        state = (await self._js.stream_info(self._stream.name)).state
        if state.first_seq <= sequence <= state.last_seq:
            return False
        self._msg_id_suffix = f"~{state.first_seq}"
        log.warning(
            "relay %s: the stream lost messages the server still remembers; republishing",
            self._stream.name,
        )
        return True

    async def publish_batch(self) -> int:
        """Publish the next batch of stored events; returns how many were read."""
        # Reading and encoding happen off the event loop, which also serves HTTP requests.
        count, last_position, outgoing = await in_thread(self._read_batch)
        if outgoing:
            await self._publish(outgoing)
            EVENTS_RELAYED.labels(self._stream.name).inc(len(outgoing))
        self.position = last_position
        RELAY_POSITION.labels(self._stream.name).set(last_position)
        return count

    def _read_batch(self) -> tuple[int, int, list[_Outgoing]]:
        notifications = self._app.recorder.select_notifications(
            self.position, self._batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0, self.position, []
        outgoing = [o for n in notifications if (o := self._prepare(n)) is not None]
        return len(notifications), notifications[-1].id, outgoing

    def _prepare(self, notification: Notification) -> _Outgoing | None:
        domain_event, actor = audited_event(self._app.mapper, notification)
        translated = self._translate(domain_event)
        if translated is None:
            return None
        office, contract = translated
        msg_id = event_id(domain_event.originator_id, domain_event.originator_version)
        envelope = Envelope.wrap(
            msg_id, domain_event.timestamp, str(domain_event.originator_id), contract, actor
        )
        return _Outgoing(notification.id, contract.subject(office), envelope.to_bytes(), msg_id)

    async def _publish(self, outgoing: list[_Outgoing]) -> None:
        """Pipeline the batch, then check each acknowledgement in order.

        nats-py's `publish_async` leaves the future of a refused message unresolved (the
        refusal only reaches `error_cb`), so the relay reads the replies on its own inbox.
        """
        inbox = await self._reply_inbox()
        waiting: list[asyncio.Future[Msg]] = []
        loop = asyncio.get_running_loop()
        try:
            for offset, message in enumerate(outgoing):
                reply = f"{inbox}.{next(self._reply_numbers)}"
                waiting.append(self._replies.setdefault(reply, loop.create_future()))
                headers = {
                    Header.MSG_ID: message.msg_id + self._msg_id_suffix,
                    Header.EXPECTED_LAST_SEQUENCE: str(self._last_seq + offset),
                    POSITION_HEADER: str(message.position),
                }
                await self._nc.publish(message.subject, message.payload, reply, headers)
            async with asyncio.timeout(self._ack_timeout):
                for offset, future in enumerate(waiting):
                    self._check_ack(offset, await future)
        except TimeoutError:
            raise StreamBehind("no acknowledgement in time") from None
        finally:
            for future in waiting:
                future.cancel()
            self._replies.clear()
        self._last_seq += len(outgoing)

    def _check_ack(self, offset: int, reply: Msg) -> None:
        if reply.headers and reply.headers.get("Status") == "503":
            raise StreamBehind(f"no stream {self._stream.name} answers")
        response = json.loads(reply.data)
        if "error" in response:
            raise StreamBehind(f"message {offset} of the batch refused: {response['error']}")
        ack = PubAck.from_response(response)
        if ack.duplicate:
            raise StreamBehind(f"message {offset} of the batch: {ack}", duplicate_of=ack.seq)
        if ack.seq != self._last_seq + offset + 1:
            raise StreamBehind(f"message {offset} of the batch: {ack}")

    async def _reply_inbox(self) -> str:
        if self._inbox is None:
            inbox = self._nc.new_inbox()

            async def on_reply(msg: Msg) -> None:
                future = self._replies.get(msg.subject)
                if future is not None and not future.done():
                    future.set_result(msg)

            await self._nc.subscribe(f"{inbox}.*", cb=on_reply)
            self._inbox = inbox
        return self._inbox

    async def _wait_for_news(self) -> None:
        # asyncio.timeout, not wait_for, which on Python 3.11 can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._idle_poll):
                await self._news.wait()


def _holes(state: StreamState) -> bool:
    return bool(state.messages) and state.messages < state.last_seq - state.first_seq + 1
