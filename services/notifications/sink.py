"""A local mail sink (本地邮件收件箱): an SMTP server (aiosmtpd) that keeps every message it
receives as a `.eml` file in a folder, for `shangliang up --mail-sink` and the demo, so that
a user can open the notices in any mail program and nothing leaves the machine.

It is a receiver that dedupes, as mail programs do: one file per Message-ID. The sender
sends at least once (a message in flight at a crash goes again after the restart, under
the same Message-ID, services/notifications/application.py); a second copy is accepted
(250, or the sender would try again) but not kept, and is logged and counted.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from shared.embedded import free_port
from shared.files import private_dir

log = logging.getLogger(__name__)


class _Keep:
    """One file per Message-ID (a message without one: per content)."""

    def __init__(self, folder: Path, say: Callable[[str], None] | None) -> None:
        self.folder = folder
        self.say = say
        self.received = 0
        self.duplicates = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.content
        message_id = email.message_from_bytes(content, policy=email.policy.default)["Message-ID"]
        name = hashlib.sha256(str(message_id or content).encode()).hexdigest()[:24]
        path = self.folder / f"{name}.eml"
        with self._lock:
            self.received += 1
            if path.exists():
                self.duplicates += 1
                line = (
                    f"邮件收件箱：重复邮件未保存 / mail sink: a second copy of {message_id} was "
                    f"not kept (duplicates so far: {self.duplicates})"
                )
                log.info(line)
                if self.say is not None:
                    self.say(line)
                return "250 OK"
            partial = path.with_suffix(".part")
            partial.write_bytes(content)
            os.replace(partial, path)  # whole messages only, whoever reads the folder
        return "250 OK"


class MailSink:
    """Started and stopped by the launcher; `port` 0 picks a free one. `say`: where a
    duplicate is told (besides the log)."""

    def __init__(
        self,
        folder: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = folder
        self.host = host
        self.port = port
        self._keep = _Keep(folder, say)
        self._controller: Controller | None = None

    @property
    def received(self) -> int:
        """Messages received since it started, duplicates included."""
        return self._keep.received

    @property
    def duplicates(self) -> int:
        """Messages received since it started whose Message-ID it already kept."""
        return self._keep.duplicates

    def start(self) -> MailSink:
        # Residents' and departments' mail: a private folder, like the stores.
        private_dir(self.folder)
        self.port = self.port or free_port(self.host)
        self._controller = Controller(self._keep, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))

    def environment(self) -> dict[str, str]:
        """What points the notifications service at this sink."""
        return {
            "SHANGLIANG_NOTIFICATIONS_SMTP_HOST": self.host,
            "SHANGLIANG_NOTIFICATIONS_SMTP_PORT": str(self.port),
            "SHANGLIANG_NOTIFICATIONS_SMTP_TLS": "none",
        }
