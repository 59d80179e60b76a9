"""The reminder scheduler (提醒与摘要): deadline reminders N working days before and on the
day, each office's daily digest to its leaders and the prefecture's weekly one (only where
the leaders have a directory entry with an address: a digest entered later is made by the
next scan the same day).

It keeps no state of its own: a reminder's or digest's id is made from the case and its
deadline (or the office and the day), so a scan after a restart, or by another replica that
took over the lease, makes the same notices, which the store keeps once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from services.notifications.application import Clock, utc_now
from services.notifications.domain import digests_due, reminders_due
from services.notifications.settings import NotificationsSettings
from services.notifications.store import NotificationStore
from shared.clock import china_day, china_time

log = logging.getLogger(__name__)


class ReminderScheduler:
    def __init__(
        self,
        store: NotificationStore,
        settings: NotificationsSettings,
        offices: Sequence[str],
        prefecture: str,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._settings = settings
        self._offices = list(offices)
        self._prefecture = prefecture
        self._clock = clock

    def scan_once(self) -> int:
        """Make what is due now; how many notices (new or already made) it found."""
        now = self._clock()
        today = china_day(now)
        cases = self._store.cases()
        notices = reminders_due(cases, today, self._settings.reminder_working_days)
        if china_time(now).hour >= self._settings.digest_hour:
            # A digest is for an office whose leaders have an address: nobody reads the
            # others (a notice without an entry reaches no inbox either), so none is kept.
            readers = {
                r["key"]
                for r in self._store.recipients("leaders:")
                if r["emails"] or r["robots"] or r["users"]
            }
            notices += [
                n
                for n in digests_due(
                    self._offices, self._prefecture, cases, self._store.issues(), today
                )
                if n.recipient in readers
            ]
        self._store.add_notices(notices)
        return len(notices)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.scan_once)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("notifications: scan failed: %r", error)
            await asyncio.sleep(self._settings.scan_interval_seconds)
