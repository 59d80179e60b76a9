"""The notifications application (通知): the directory, the inbox, the dead letters, and the
sender that takes due deliveries to their channels, each recorded before it goes out."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from prometheus_client import Counter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from services.notifications.channels import Channels, DeliveryFailed, Outgoing
from services.notifications.domain import QuietHours
from services.notifications.settings import NotificationsSettings
from services.notifications.store import NotificationStore, Page
from services.notifications.upstream import unstamp

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")

RESENT_AFTER_CRASH = Counter(
    "shangliang_notifications_resent_after_crash_total",
    "Deliveries found in flight when the last sender stopped, sent again (same Message-ID)",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class UnknownRecipient(LookupError):
    """No directory entry under that key."""


class NotInInbox(LookupError):
    """No such notice in the caller's inbox."""


Behind = Callable[[], Awaitable[list[str]]]
"""The upstream streams holding events the consumers have not applied yet."""


async def nothing_behind() -> list[str]:
    return []


class NotificationsApplication:
    """What the API and the CLI ask of the service."""

    def __init__(
        self,
        store: NotificationStore,
        clock: Clock = utc_now,
        quiet: QuietHours | None = None,
        behind: Behind = nothing_behind,
    ) -> None:
        self.store = store
        self._clock = clock
        self._quiet = quiet or QuietHours.parse("")
        self.behind = behind
        """Set by main.py once the consumers run."""

    def put_recipient(
        self, key: str, name: str, emails: list[str], robots: list[dict[str, Any]], users: list[str]
    ) -> dict[str, Any]:
        self.store.put_recipient(key, name, emails, robots, users)
        return next(r for r in self.store.recipients(key) if r["key"] == key)

    def recipient(self, key: str) -> dict[str, Any]:
        found = [r for r in self.store.recipients(key) if r["key"] == key]
        if not found:
            raise UnknownRecipient(key)
        return found[0]

    def delete_recipient(self, key: str) -> None:
        if not self.store.delete_recipient(key):
            raise UnknownRecipient(key)

    def recipients(self, prefix: str | None) -> list[dict[str, Any]]:
        return self.store.recipients(prefix)

    def inbox(self, user: str, limit: int, offset: int, unread: bool) -> Page:
        return self.store.inbox(user, limit, offset, unread)

    def unread(self, user: str) -> int:
        return self.store.unread(user)

    def mark_read(self, user: str, notice: str) -> None:
        """已读: the notice read by the user; `NotInInbox` if it is not the user's."""
        if not self.store.mark_read(user, notice, self._clock()):
            raise NotInInbox(notice)

    def notices(self, offices: Sequence[str] | None, limit: int, offset: int) -> Page:
        return self.store.notices(offices, limit, offset)

    def deliveries(
        self, status: str | None, offices: Sequence[str] | None, limit: int, offset: int
    ) -> Page:
        return self.store.deliveries_page(status, limit, offset, offices)

    async def summary(self, offices: Sequence[str] | None) -> dict[str, Any]:
        """How many deliveries wait, are in flight, were sent (of `offices`, or of all), and
        whether everything is settled: every upstream event read and nothing due now or in
        flight, so that what is left waits for quiet hours' end, a retry or a later time."""
        now = self._clock()
        counts = await asyncio.to_thread(self.store.summary, offices, now)
        behind = await self.behind()
        quiet = self._quiet.contains(now)
        settled = not behind and counts["in_flight"] == 0 and (quiet or counts["due"] == 0)
        return {**counts, "quiet_hours": quiet, "behind": behind, "settled": settled}

    def resend(self, deliveries: Sequence[str] | None, offices: Sequence[str] | None) -> int:
        """Dead letters due again: those named, or all of them (`None`), of `offices`."""
        return self.store.resend(deliveries, offices, self._clock())


class Sender:
    """Takes due deliveries to their channels. One sender at a time (the lease in main.py):
    a delivery is claimed (`sending`, with its claim counted) before it goes out and recorded
    `sent` as soon as the server or robot has taken it, so a sender that dies leaves only what
    was in flight `sending`; the next one sends those again, with the same Message-ID, and
    counts them (`resent_after_crash`). At least once on the wire, then: a receiver that
    keeps one message per Message-ID (our sink, mail programs) sees each exactly once."""

    def __init__(
        self,
        store: NotificationStore,
        channels: Channels,
        settings: NotificationsSettings,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._channels = channels
        self._settings = settings
        self._clock = clock
        self._quiet = QuietHours.parse(settings.quiet_hours)
        self._slots = asyncio.Semaphore(settings.send_concurrency)
        # The sender's own thread for its store writes: a `sent` waits for no consumer batch
        # or API read queued in the default pool, only for the store itself.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="notifications-sent")
        self.sent = 0
        self.resent_after_crash = 0
        """Deliveries this sender found in flight at its start and sent again."""

    async def run(self) -> None:
        """Keep up to `send_concurrency` deliveries going, each taken when a slot frees: a
        slow or failing channel holds its own slot only, and what is `sending` at a crash is
        only what was really in flight."""
        interrupted = await self._write(self._store.requeue_interrupted, self._clock())
        if interrupted:
            self.resent_after_crash += len(interrupted)
            RESENT_AFTER_CRASH.inc(len(interrupted))
            log.warning(
                "notifications: %d deliveries were in flight when the last sender stopped; "
                "sending them again under the same Message-ID (a receiver may see them twice "
                "unless it keeps one per Message-ID): %s",
                len(interrupted),
                ", ".join(interrupted[:20]) + (" …" if len(interrupted) > 20 else ""),
            )
        going: set[asyncio.Task[None]] = set()
        try:
            while True:
                taken = 0
                free = self._settings.send_concurrency - len(going)
                try:
                    if free > 0 and not self._quiet.contains(self._clock()):
                        due = await self._write(self._store.claim_due, self._clock(), free)
                        going |= {
                            asyncio.create_task(self._deliver(self._outgoing(r))) for r in due
                        }
                        taken = len(due)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.warning("notifications: cannot read the deliveries due: %r", error)
                if going and (taken == 0 or len(going) >= self._settings.send_concurrency):
                    done, going = await asyncio.wait(
                        going, timeout=self._settings.poll_seconds, return_when="FIRST_COMPLETED"
                    )
                    for task in done:
                        if not task.cancelled() and task.exception() is not None:
                            log.warning("notifications: a delivery failed: %r", task.exception())
                elif taken == 0:
                    await asyncio.sleep(self._settings.poll_seconds)
        finally:
            for task in going:
                task.cancel()
            await asyncio.gather(*going, return_exceptions=True)

    async def send_due(self, limit: int = 500) -> int:
        """Send one batch of what is due now, all of it; how many were taken."""
        now = self._clock()
        if self._quiet.contains(now):
            return 0
        due = await self._write(self._store.claim_due, now, limit)
        await asyncio.gather(*(self._deliver(self._outgoing(row)) for row in due))
        return len(due)

    @staticmethod
    def _outgoing(row: dict[str, Any]) -> Outgoing:
        return Outgoing(
            delivery_id=row["id"],
            channel=row["channel"],
            address=row["address"],
            secret=row["secret"],
            subject=row["subject"],
            body=row["body"],
            created_at=unstamp(row["created_at"]),
            attachment_name=row["attachment_name"],
            attachment_type=row["attachment_type"],
            attachment=base64.b64decode(row["attachment"]) if row["attachment"] else None,
        )

    async def _deliver(self, outgoing: Outgoing) -> None:
        async with self._slots:  # send_due's batches, run() keeps its own count
            try:
                await self._send(outgoing)
            except DeliveryFailed as error:
                log.warning("delivery %s is a dead letter: %s", outgoing.delivery_id, error)
                failure = (outgoing.delivery_id, str(error), True)
                await self._write(self._store.record_failure, *failure)
                return
            # The server's 250 (or the robot's `0`) has just come back: nothing is awaited
            # before the record, so the window a crash can re-send from is the store's write.
            await self._record_sent(outgoing.delivery_id)
        self.sent += 1

    async def _send(self, outgoing: Outgoing) -> None:
        """Sent, retried with backoff; `DeliveryFailed` once every attempt failed."""
        s = self._settings

        async def failed_once(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.info("delivery %s failed (%s), retrying", outgoing.delivery_id, error)
            await self._write(self._store.record_failure, outgoing.delivery_id, str(error), False)

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(s.attempts),
            wait=wait_exponential(multiplier=s.backoff_initial_seconds, max=s.backoff_max_seconds),
            before_sleep=failed_once,
            reraise=True,
        ):
            with attempt:
                await self._channels.send(outgoing)

    async def _record_sent(self, delivery: str) -> None:
        """It went out: recorded however long the store is busy, or it would be sent again
        (under the same Message-ID) by the next sender."""
        async for attempt in AsyncRetrying(
            wait=wait_exponential(multiplier=0.1, max=2.0), stop=stop_after_delay(300), reraise=True
        ):
            with attempt:
                await self._write(self._store.mark_sent, delivery, self._clock())

    async def _write(self, write: Callable[..., T], *args: Any) -> T:
        """A store write on the sender's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, write, *args)

    def close(self) -> None:
        # Wait for a write still on the thread: the store is closed next, and sqlite3 crashes a
        # process whose connection is closed under a running statement (as shared.aio says).
        self._writer.shutdown(wait=True)
