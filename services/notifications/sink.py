"""A local mail sink (本地邮件收件箱): an SMTP server (aiosmtpd) that keeps every message it
receives as a `.eml` file in a folder, for `shangliang up --mail-sink` and the demo, so that
a user can open the notices in any mail program and nothing leaves the machine.

A file is named after the message's Message-ID: a message sent again after a crash (the same
Message-ID, services/notifications/channels.py) replaces its file instead of adding one.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from shared.embedded import free_port
from shared.files import private_dir


class _Keep:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.content
        message_id = email.message_from_bytes(content, policy=email.policy.default)["Message-ID"]
        name = hashlib.sha256(str(message_id or content).encode()).hexdigest()[:24]
        path = self.folder / f"{name}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(content)
        os.replace(partial, path)  # whole messages only, whoever reads the folder
        return "250 OK"


class MailSink:
    """Started and stopped by the launcher; `port` 0 picks a free one."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = folder
        self.host = host
        self.port = port
        self._controller: Controller | None = None

    def start(self) -> MailSink:
        # Residents' and departments' mail: a private folder, like the stores.
        private_dir(self.folder)
        self.port = self.port or free_port(self.host)
        self._controller = Controller(_Keep(self.folder), hostname=self.host, port=self.port)
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
