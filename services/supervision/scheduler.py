"""The deadline scheduler (督办提醒): reminders, 催办, overdue and 提级督办 as time passes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from services.supervision.application import SupervisionApplication

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class DeadlineScheduler:
    """Scans the cases every `interval` seconds by `clock`'s time. Every replica may run one:
    the cases' versions make sure each step is stored once whichever replica sees it first."""

    def __init__(
        self, application: SupervisionApplication, clock: Clock, interval: float = 60.0
    ) -> None:
        self._app = application
        self._clock = clock
        self._interval = interval
        self.scans = 0
        """Completed scans; a test can wait for the next one."""

    async def scan(self) -> int:
        """Look once; returns how many cases changed."""
        changed = await asyncio.to_thread(self._app.supervise, self._clock())
        self.scans += 1
        return changed

    async def run(self) -> None:
        while True:
            try:
                changed = await self.scan()
                if changed:
                    log.info("deadline scan: %d cases changed", changed)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # A store that is briefly unavailable: the next scan tries again.
                log.warning("deadline scan failed: %r", error)
            await asyncio.sleep(self._interval)
