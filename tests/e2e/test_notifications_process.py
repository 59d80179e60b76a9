"""The notifications service as a real process: its directory set by the CLI over HTTP, a
burst of letters sent to our mail sink (a real SMTP server that keeps one message per
Message-ID), the process killed (SIGKILL) mid-batch and started again: every notice
arrives, the sink holds each exactly once, and the re-sends on the wire are counted by the
sink and by the service alike."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client

from services.notifications.domain import department, notice_id
from services.notifications.sink import MailSink
from services.notifications.upstream import delivery_id
from shared.auth import Authenticator
from shared.contracts import Envelope, LetterIssuedV1
from shared.embedded import EmbeddedNats, die_with_parent, free_port
from shared.messaging import set_up
from shared.settings import Settings
from tests.integration.test_notifications import DEPARTMENT
from tests.support.stack import ROOT
from tests.support.streams import publish_as_relay
from tests.support.waiting import wait_until
from tools.cli import main as shangliang

LETTERS = 60
CONCURRENCY = 4


class Service:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.url = f"http://127.0.0.1:{env['SHANGLIANG_NOTIFICATIONS_PORT']}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.notifications.main"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

    async def ready(self) -> None:
        async def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{self.url}/readyz", timeout=1)).status_code == 200

        await wait_until(answers, timeout=30, what="notifications ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def kept_ids(sink: MailSink) -> list[str]:
    """The Message-ID of every message the sink kept, one per file."""
    return [
        str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["Message-ID"])
        for path in sink.messages()
    ]


@pytest.fixture
def service(nats_server: EmbeddedNats, tmp_path: Path) -> Iterator[tuple[Service, MailSink]]:
    sink = MailSink(tmp_path / "mail").start()
    env = {
        **os.environ,
        "SHANGLIANG_NATS_URL": nats_server.url,
        "SHANGLIANG_DATA_DIR": str(tmp_path / "data"),
        "SHANGLIANG_NOTIFICATIONS_PORT": str(free_port()),
        **sink.environment(),
        "SHANGLIANG_NOTIFICATIONS_SEND_CONCURRENCY": str(CONCURRENCY),
        "SHANGLIANG_NOTIFICATIONS_POLL_SECONDS": "0.05",
        "PYTHONUNBUFFERED": "1",
    }
    running = Service(env, tmp_path / "notifications.log")
    try:
        yield running, sink
    finally:
        running.stop()
        sink.stop()


async def test_a_killed_service_sends_every_notice_after_its_restart_and_the_sink_keeps_each_once(
    service: tuple[Service, MailSink], nats_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifications, sink = service
    js = nats_client.jetstream()
    await set_up(Settings(), js)
    notifications.start()
    await notifications.ready()
    key = department("yanji", DEPARTMENT)
    set_entry = ["notifications", "--url", notifications.url, "recipient-set", key]
    code = await asyncio.to_thread(
        shangliang, [*set_entry, "--name", DEPARTMENT, "--email", "zjj@yanji.example"]
    )
    assert code == 0
    assert await asyncio.to_thread(shangliang, [*set_entry, "--name", "x", "--email", "bad"]) == 2

    expected = set()
    for sequence in range(1, LETTERS + 1):
        contract = LetterIssuedV1(
            case_id=uuid.uuid4(),
            office="yanji",
            department=DEPARTMENT,
            number=f"延吉政协督〔2020〕{sequence}号",
            year=2020,
            sequence=sequence,
            deadline=date(2020, 6, 30),
            requirements="按期办理",
            issued_at=datetime(2020, 5, 1, tzinfo=UTC),
        )
        event_id = str(uuid.uuid4())
        envelope = Envelope.wrap(event_id, contract.issued_at, contract.subject("yanji"), contract)
        await publish_as_relay(js, contract.subject("yanji"), envelope.to_bytes(), event_id, None)
        notice = notice_id(event_id, "letter_issued", key)
        expected.add(f"<{delivery_id(notice, 'email', 'zjj@yanji.example')}@shangliang>")

    await wait_until(lambda: sink.received >= 10, timeout=30, what="the first emails")
    notifications.kill()
    before = sink.received
    assert before < LETTERS, "killed after the batch, not in the middle of it"

    notifications.start()
    await notifications.ready()
    token = Authenticator(Settings()).mint("yanbian", ["admin"], subject="e2e")
    admin = {"Authorization": f"Bearer {token}"}

    async def settled() -> bool:
        async with httpx.AsyncClient(headers=admin) as client:
            answer = await client.get(f"{notifications.url}/deliveries/summary")
        return bool(answer.json()["settled"]) and answer.json()["sent"] == LETTERS

    await wait_until(settled, timeout=60, what="every letter sent after the restart")
    async with httpx.AsyncClient(headers=admin) as client:
        summary = (await client.get(f"{notifications.url}/deliveries/summary")).json()
    kept = kept_ids(sink)
    resends = sink.received - LETTERS
    numbers = (
        f"killed after {before} received; on the wire {sink.received} for {LETTERS} letters: "
        f"{resends} re-sent after the crash (the service counted {summary['resent_after_crash']}"
        f" in flight and sent again), {sink.duplicates} copies the sink did not keep; "
        f"{len(kept)} kept, {len(set(kept))} Message-IDs"
    )
    print(numbers)
    # Every notice's Message-ID arrived, and the sink holds each exactly once.
    assert set(kept) == expected, numbers
    assert len(kept) == LETTERS, numbers
    # What went twice on the wire is what was in flight at the kill, and no more: the
    # service knows it (each in-flight delivery counted), the sink dropped each copy.
    assert sink.duplicates == resends, numbers
    assert resends <= summary["resent_after_crash"] <= CONCURRENCY, numbers
    assert summary["resent_after_crash"] >= 1, "a kill mid-batch leaves deliveries in flight"
    assert summary["due"] == summary["in_flight"] == summary["dead"] == 0, summary
    async with httpx.AsyncClient(headers=admin) as client:
        dead = await client.get(f"{notifications.url}/dead-letters")
        sent = await client.get(
            f"{notifications.url}/deliveries", params={"status": "sent", "page_size": 100}
        )
        refused = await client.get(f"{notifications.url}/deliveries", params={"status": "lost"})
        county = Authenticator(Settings()).mint("tumen", ["admin"], subject="e2e-tumen")
        others = await client.get(
            f"{notifications.url}/deliveries", headers={"Authorization": f"Bearer {county}"}
        )
    assert dead.status_code == 200 and dead.json()["items"] == []
    assert sent.json()["total"] == LETTERS
    resent = [d for d in sent.json()["items"] if d["resent_after_crash"]]
    assert len(resent) == summary["resent_after_crash"]
    assert all(d["claims"] == 2 and d["claimed_at"] for d in resent), resent
    assert refused.status_code == 422
    assert others.status_code == 200 and others.json()["total"] == 0  # another county's: not shown
