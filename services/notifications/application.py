"""The notifications application (通知): the directory, the inbox, the dead letters, and the
sender that takes due deliveries to their channels, each recorded before it goes out."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

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


def utc_now() -> datetime:
    return datetime.now(UTC)


class UnknownRecipient(LookupError):
    """No directory entry under that key."""


class NotInInbox(LookupError):
    """No such notice in the caller's inbox."""


class NotificationsApplication:
    """What the API and the CLI ask of the service."""

    def __init__(self, store: NotificationStore, clock: Clock = utc_now) -> None:
        self.store = store
        self._clock = clock

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

    def resend(self, deliveries: Sequence[str] | None, offices: Sequence[str] | None) -> int:
        """Dead letters due again: those named, or all of them (`None`), of `offices`."""
        return self.store.resend(deliveries, offices, self._clock())


class Sender:
    """Takes due deliveries to their channels. One sender at a time (the lease in main.py):
    a delivery is marked `sending` before it goes out and `sent` after, so a sender that dies
    leaves `sending` rows, which the next one sends again with the same Message-ID."""

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
        self.sent = 0

    async def run(self) -> None:
        """Keep up to `send_concurrency` deliveries going, each taken when a slot frees: a
        slow or failing channel holds its own slot only, and what is `sending` at a crash is
        only what was really in flight."""
        interrupted = await asyncio.to_thread(self._store.requeue_interrupted)
        if interrupted:
            log.warning("notifications: %d deliveries were interrupted; sending again", interrupted)
        going: set[asyncio.Task[None]] = set()
        try:
            while True:
                taken = 0
                free = self._settings.send_concurrency - len(going)
                try:
                    if free > 0 and not self._quiet.contains(self._clock()):
                        due = await asyncio.to_thread(self._store.claim_due, self._clock(), free)
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
        due = await asyncio.to_thread(self._store.claim_due, now, limit)
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
        s = self._settings

        def failed_once(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.info("delivery %s failed (%s), retrying", outgoing.delivery_id, error)
            self._store.record_failure(outgoing.delivery_id, str(error), dead=False)

        async with self._slots:  # send_due's batches, run() keeps its own count
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(s.attempts),
                    wait=wait_exponential(
                        multiplier=s.backoff_initial_seconds, max=s.backoff_max_seconds
                    ),
                    before_sleep=failed_once,
                    reraise=True,
                ):
                    with attempt:
                        await self._channels.send(outgoing)
            except DeliveryFailed as error:
                log.warning("delivery %s is a dead letter: %s", outgoing.delivery_id, error)
                await asyncio.to_thread(
                    self._store.record_failure, outgoing.delivery_id, str(error), True
                )
                return
        await self._record_sent(outgoing.delivery_id)
        self.sent += 1

    async def _record_sent(self, delivery: str) -> None:
        """It went out: recorded however long the store is busy, or it would be sent again
        (under the same Message-ID) by the next sender."""
        async for attempt in AsyncRetrying(
            wait=wait_exponential(multiplier=0.1, max=2.0), stop=stop_after_delay(300), reraise=True
        ):
            with attempt:
                await asyncio.to_thread(self._store.mark_sent, delivery, self._clock())
