"""Notifications (通知): how fast a burst of due reminders goes out, and how long an event
takes to become an email, against a real SMTP server in another process.

    .venv/bin/python -m bench.notifications_bench [--reminders 10000] [--rate 50] [--seconds 20]

1. Burst: `--reminders` open cases whose deadline is today, in a SQLite store of their own;
   one scheduler scan makes the reminders (timed), then the sender (`Sender.run`, default
   concurrency) sends them all to the SMTP sink (timed: sent per second). Beside it, in the
   same run, the reference: the same number of messages sent by plain `aiosmtplib.send` with
   the same concurrency and no store (what the SMTP exchange alone allows).
2. Latency: the notifications service as a real process on a real nats-server; CaseOverdue
   events published at `--rate` per second for `--seconds`; each email's delay is from the
   publish to the sink's receipt (its Message-ID says which event it was): p50, p99, max.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx

from services.notifications.application import Sender
from services.notifications.channels import Channels, Outgoing, email_message
from services.notifications.domain import department, notice_id
from services.notifications.scheduler import ReminderScheduler
from services.notifications.settings import NotificationsSettings
from services.notifications.store import open_store
from services.notifications.upstream import delivery_id
from shared.clock import CHINA
from shared.contracts import CaseOverdueV1, Envelope
from shared.embedded import EmbeddedNats, die_with_parent, free_port
from shared.messaging import connect, set_up
from shared.settings import Settings
from tests.support.streams import publish_as_relay

REPO = Path(__file__).resolve().parents[1]
DEPARTMENT = "延吉市住房和城乡建设局"
ADDRESS = "zjj@yanji.example"


def _sink(port: int, arrivals: Any) -> None:
    """The SMTP server, in a process of its own: records (Message-ID, time received)."""
    from aiosmtpd.controller import Controller

    class Record:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            arrivals.put((str(parsed["Message-ID"]), time.time()))
            return "250 OK"

    controller = Controller(Record(), hostname="127.0.0.1", port=port)
    controller.start()
    while True:
        time.sleep(3600)


def drain(arrivals: Any, into: dict[str, float], want: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(into) < want and time.monotonic() < deadline:
        try:
            message_id, at = arrivals.get(timeout=0.5)
        except Exception:
            continue
        into.setdefault(message_id, at)


async def burst(count: int, port: int, arrivals: Any, folder: Path) -> None:
    store = open_store(Settings(data_dir=folder))
    store.put_recipient(department("yanji", DEPARTMENT), DEPARTMENT, [ADDRESS], [], [])
    today = date(2026, 12, 2)
    with store.write() as c:
        c.executemany(
            "INSERT INTO notifications_cases"
            " VALUES (?, 'yanji', ?, ?, ?, 0, 0, 'referral', '', NULL)",
            [(f"case-{n:05d}", DEPARTMENT, today.isoformat(), f"延吉政协督〔2026〕{n}号")
             for n in range(count)],
        )  # fmt: skip
    settings = NotificationsSettings(smtp_port=port, poll_seconds=0.01)
    now = datetime.combine(today, clock_time(9), CHINA)
    started = time.perf_counter()
    made = ReminderScheduler(store, settings, ["yanji"], "yanbian", lambda: now).scan_once()
    scan = time.perf_counter() - started
    assert made >= count, made
    received: dict[str, float] = {}
    async with httpx.AsyncClient() as http:
        sender = Sender(store, Channels(settings, http), settings, lambda: now)
        started = time.perf_counter()
        task = asyncio.create_task(sender.run())
        while sender.sent < count:
            await asyncio.sleep(0.05)
        sent_seconds = time.perf_counter() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await asyncio.to_thread(drain, arrivals, received, count, 30)
    print(
        f"burst: {count} reminders made by one scan in {scan:.2f} s; "
        f"sent in {sent_seconds:.2f} s = {count / sent_seconds:,.0f}/s "
        f"(concurrency {settings.send_concurrency}); received {len(received)}"
    )
    store.datastore.close()

    # The reference: the SMTP exchange alone, same concurrency, no store.
    slots = asyncio.Semaphore(settings.send_concurrency)
    base = Outgoing("x", "email", ADDRESS, None, "督办件今天到期 / due today", "正文", now)

    async def one(n: int) -> None:
        message = email_message(base, settings.mail_from)
        message.replace_header("Message-ID", f"<ref-{n}@bench>")
        async with slots:
            await aiosmtplib.send(message, hostname="127.0.0.1", port=port, start_tls=False)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    raw = time.perf_counter() - started
    print(f"reference: {count} plain aiosmtplib.send in {raw:.2f} s = {count / raw:,.0f}/s")
    drain(arrivals, {}, count, 30)


async def latency(rate: float, seconds: float, port: int, arrivals: Any, folder: Path) -> None:
    nats = EmbeddedNats(folder / "nats").start()
    env = {
        **os.environ,
        "SHANGLIANG_NATS_URL": nats.url,
        "SHANGLIANG_DATA_DIR": str(folder / "service"),
        "SHANGLIANG_NOTIFICATIONS_PORT": str(free_port()),
        "SHANGLIANG_NOTIFICATIONS_SMTP_PORT": str(port),
        "SHANGLIANG_NOTIFICATIONS_POLL_SECONDS": "0.02",
    }
    nc = await connect(nats.url, "bench")
    js = nc.jetstream()
    await set_up(Settings(), js)
    log = (folder / "notifications.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.notifications.main"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
    )  # fmt: skip
    url = f"http://127.0.0.1:{env['SHANGLIANG_NOTIFICATIONS_PORT']}"
    try:
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            from shared.auth import Authenticator

            token = Authenticator(Settings()).mint("yanbian", ["admin"], subject="bench")
            key = department("yanji", DEPARTMENT)
            await http.put(
                f"{url}/recipients/{key}",
                json={"name": DEPARTMENT, "emails": [ADDRESS]},
                headers={"Authorization": f"Bearer {token}"},
            )
        await asyncio.sleep(8)  # the lease: the sender starts within one TTL
        published: dict[str, float] = {}
        total = int(rate * seconds)
        started = time.monotonic()
        for n in range(total):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            contract = CaseOverdueV1(
                case_id=uuid.uuid4(), office="yanji", department=DEPARTMENT,
                deadline=date(2026, 11, 30), issue_ids=[], overdue_at=datetime.now(UTC),
            )  # fmt: skip
            event_id = str(uuid.uuid4())
            subject = contract.subject("yanji")
            envelope = Envelope.wrap(event_id, datetime.now(UTC), subject, contract)
            sent_at = time.time()
            await publish_as_relay(js, subject, envelope.to_bytes(), event_id, None)
            notice = notice_id(event_id, "case_overdue", key)
            published[f"<{delivery_id(notice, 'email', ADDRESS)}@shangliang>"] = sent_at
        received: dict[str, float] = {}
        await asyncio.to_thread(drain, arrivals, received, total, 60)
        delays = sorted((received[m] - published[m]) * 1000 for m in published if m in received)
        p99 = delays[int(0.99 * (len(delays) - 1))]
        print(
            f"latency at {rate:.0f} events/s for {seconds:.0f} s: {len(delays)}/{total} emails; "
            f"p50 {statistics.median(delays):.0f} ms, p99 {p99:.0f} ms, max {delays[-1]:.0f} ms"
        )
    finally:
        process.terminate()
        process.wait(10)
        await nc.close()
        nats.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    arrivals: Any = multiprocessing.get_context("spawn").Queue()
    port = free_port("127.0.0.1")
    sink = multiprocessing.get_context("spawn").Process(target=_sink, args=(port, arrivals))
    sink.start()
    try:
        time.sleep(1.5)
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(burst(args.reminders, port, arrivals, Path(folder) / "burst"))
            asyncio.run(latency(args.rate, args.seconds, port, arrivals, Path(folder)))
    finally:
        sink.terminate()
        sink.join()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
