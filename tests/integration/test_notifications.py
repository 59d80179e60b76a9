"""Notifications with real parts: events on a real nats-server become emails received by a
real SMTP server in this process (aiosmtpd) and robot messages posted to a local HTTP
receiver; the DOCX letter and the .ics invitation are opened with python-docx and icalendar."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import io
import json
import threading
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
from aiosmtpd.controller import Controller
from docx import Document
from icalendar import Calendar
from nats.js import JetStreamContext

from services.notifications.application import Sender
from services.notifications.channels import Channels
from services.notifications.consumers import UPSTREAMS
from services.notifications.scheduler import ReminderScheduler
from services.notifications.settings import NotificationsSettings
from services.notifications.sink import MailSink
from services.notifications.store import NotificationStore, open_store
from shared.clock import CHINA
from shared.consumer import StreamConsumer
from shared.contracts import (
    CaseEscalatedV1,
    CaseOpenedV1,
    CaseOverdueV1,
    Contract,
    Envelope,
    LetterIssuedV1,
    MeetingCancelledV1,
    MeetingPlannedV1,
    MeetingPostponedV1,
)
from shared.embedded import free_port
from shared.lease import Lease
from shared.messaging import ensure_stream
from shared.nats_access import NOTIFICATIONS_LEASE
from shared.settings import Settings
from tests.support.streams import publish_as_relay
from tests.support.waiting import wait_until

DEPARTMENT = "延吉市住房和城乡建设局"
SECRET = "SEC-test-secret"
NOW = datetime(2020, 6, 1, 9, 0, tzinfo=UTC)


class Inbox:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.content)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


def start_smtp(inbox: Inbox, port: int) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int, list[Controller]]]:
    inbox, port = Inbox(), free_port("127.0.0.1")
    running = [start_smtp(inbox, port)]
    try:
        yield inbox, port, running
    finally:
        for controller in running:
            controller.stop()


class Posts:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture
def robots() -> Iterator[tuple[Posts, str]]:
    """A local HTTP server answering as the three robots do."""
    posts = Posts()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            posts.received.append((self.path, body))
            answer = {"code": 0, "msg": "success"} if "feishu" in self.path else {"errcode": 0}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield posts, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def streams(nats_client: Any) -> JetStreamContext:
    js = nats_client.jetstream()
    for spec in UPSTREAMS:
        await ensure_stream(js, spec)
    return js


@pytest.fixture
def store(tmp_path: Path) -> Iterator[NotificationStore]:
    opened = open_store(Settings(data_dir=tmp_path))
    try:
        yield opened
    finally:
        opened.datastore.close()


async def publish(js: JetStreamContext, contract: Contract, office: str, event_id: str = "") -> str:
    event_id = event_id or str(uuid.uuid4())
    subject = contract.subject(office)
    envelope = Envelope.wrap(event_id, NOW, subject, contract)
    await publish_as_relay(js, subject, envelope.to_bytes(), None, None)
    return event_id


def letter(case_id: uuid.UUID, sequence: int, deadline: date = date(2020, 6, 30)) -> LetterIssuedV1:
    return LetterIssuedV1(
        case_id=case_id,
        office="yanji",
        department=DEPARTMENT,
        number=f"延吉政协督〔2020〕{sequence}号",
        year=2020,
        sequence=sequence,
        deadline=deadline,
        requirements="整治老旧小区排水管网",
        issued_at=NOW,
    )


@pytest.fixture
async def running(
    streams: JetStreamContext, store: NotificationStore, smtp: Any
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """The consumers and a sender with quick retries, in this process."""
    _, port, _ = smtp
    settings = NotificationsSettings(
        smtp_port=port, attempts=60, backoff_initial_seconds=0.05, backoff_max_seconds=0.3,
        poll_seconds=0.05,
    )  # fmt: skip
    async with httpx.AsyncClient() as http:
        sender = Sender(store, Channels(settings, http), settings)
        tasks = [asyncio.create_task(StreamConsumer(streams, s, store).run()) for s in UPSTREAMS]
        tasks.append(asyncio.create_task(sender.run()))
        try:
            yield tasks
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def attachment(message: EmailMessage) -> tuple[str, bytes]:
    (part,) = list(message.iter_attachments())
    content = part.get_payload(decode=True)
    assert isinstance(content, bytes)
    return str(part.get_filename()), content


async def test_a_letter_and_a_meeting_reach_email_robots_and_inbox_once(
    streams: JetStreamContext,
    store: NotificationStore,
    smtp: Any,
    robots: tuple[Posts, str],
    running: Any,
) -> None:
    inbox, _, _ = smtp
    posts, base = robots
    store.put_recipient(
        f"department:yanji:{DEPARTMENT}",
        DEPARTMENT,
        ["zjj@yanji.example"],
        [
            {"kind": "wecom", "url": f"{base}/wecom?key=k1", "secret": None},
            {"kind": "dingtalk", "url": f"{base}/dingtalk?access_token=t1", "secret": SECRET},
            {"kind": "feishu", "url": f"{base}/feishu/hook", "secret": SECRET},
        ],
        [],
    )
    store.put_recipient("office:yanji", "延吉市政协", ["office@yanji.example"], [], ["clerk-1"])
    case_id, meeting_id = uuid.uuid4(), uuid.uuid4()
    await publish(
        streams,
        CaseOpenedV1(
            case_id=case_id, office="yanji", origin="referral", issue_ids=[],
            department=DEPARTMENT, deadline=date(2020, 6, 30), requirements="整治",
            opened_at=NOW,
        ),
        "yanji",
    )  # fmt: skip
    letter_event = await publish(streams, letter(case_id, 7), "yanji")
    start = datetime(2020, 6, 10, 1, 0, tzinfo=UTC)
    await publish(
        streams,
        MeetingPlannedV1(
            meeting_id=meeting_id, offices=["yanji"], kind="thematic", title="老旧小区改造",
            theme="排水", starts_at=start, ends_at=start + timedelta(hours=2), venue="协商议事厅",
            planned_at=NOW,
        ),
        "yanji",
    )  # fmt: skip
    later = start + timedelta(days=7)
    await publish(
        streams,
        MeetingPostponedV1(
            meeting_id=meeting_id, offices=["yanji"], starts_at=later,
            ends_at=later + timedelta(hours=2), postponed_at=NOW, reason="专家出差",
        ),
        "yanji",
    )  # fmt: skip
    await publish(
        streams,
        MeetingCancelledV1(
            meeting_id=meeting_id, offices=["yanji"], cancelled_at=NOW, reason="议题已解决",
            issue_ids=[],
        ),
        "yanji",
    )  # fmt: skip
    await publish(
        streams,
        CaseOverdueV1(
            case_id=case_id, office="yanji", department=DEPARTMENT, deadline=date(2020, 6, 30),
            issue_ids=[], overdue_at=NOW,
        ),
        "yanji",
    )  # fmt: skip
    # The letter's event again (a relay that published it twice): the same notices, no more.
    await publish(streams, letter(case_id, 7), "yanji", event_id=letter_event)

    # letter: department; 3 meeting notices: office; overdue: department and office
    await wait_until(lambda: len(inbox.messages) >= 6, timeout=60, what="six emails")
    await wait_until(lambda: len(posts.received) >= 6, timeout=60, what="six robot posts")
    await asyncio.sleep(0.3)  # anything extra would have arrived by now
    assert len(inbox.messages) == 6 and len(set(inbox.ids())) == 6
    assert len(posts.received) == 6

    (mail,) = [
        m for m in inbox.messages if m["To"] == "zjj@yanji.example" and "督办函" in m["Subject"]
    ]
    raw = next(r for r in inbox.raw if str(mail["Message-ID"]).encode() in r)
    assert b"Subject: =?utf-8?" in raw  # RFC 2047 encoded words, not raw UTF-8
    assert mail["Subject"].startswith("督办函 延吉政协督〔2020〕7号")
    assert "Supervision letter" in mail["Subject"]
    assert str(mail["Message-ID"]).endswith("@shangliang>")
    assert "办理期限 / deadline: 2020-06-30" in mail.get_body(("plain",)).get_content()
    name, content = attachment(mail)
    assert name == "letter-yanji-2020-7.docx"
    text = "\n".join(p.text for p in Document(io.BytesIO(content)).paragraphs)
    assert "延吉政协督〔2020〕7号" in text and f"{DEPARTMENT}：" in text
    assert "2020年6月30日" in text

    meetings = [m for m in inbox.messages if "会议" in m["Subject"]]
    calendars = [Calendar.from_ical(attachment(m)[1]) for m in meetings]
    events = [next(iter(c.walk("VEVENT"))) for c in calendars]
    assert {str(e["UID"]) for e in events} == {f"{meeting_id}@shangliang"}
    by_sequence = sorted(zip(events, calendars, strict=True), key=lambda p: int(p[0]["SEQUENCE"]))
    assert [int(e["SEQUENCE"]) for e, _ in by_sequence] == [0, 1, 2]
    assert [str(c["METHOD"]) for _, c in by_sequence] == ["REQUEST", "REQUEST", "CANCEL"]
    assert str(by_sequence[2][0]["STATUS"]) == "CANCELLED"
    assert by_sequence[1][0].decoded("DTSTART") == later

    paths = sorted(path.split("?")[0] for path, _ in posts.received)
    assert paths == ["/dingtalk"] * 2 + ["/feishu/hook"] * 2 + ["/wecom"] * 2
    for path, body in posts.received:
        if path.startswith("/wecom"):
            assert body["msgtype"] == "text" and "督办" in body["text"]["content"]
        if path.startswith("/dingtalk"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            timestamp, sign = query["timestamp"][0], query["sign"][0]
            expected = hmac.new(
                SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256
            ).digest()
            assert base64.b64decode(sign) == expected
            assert body["msgtype"] == "text"
        if path.startswith("/feishu"):
            key = f"{body['timestamp']}\n{SECRET}".encode()
            expected = hmac.new(key, b"", hashlib.sha256).digest()
            assert base64.b64decode(body["sign"]) == expected
            assert body["msg_type"] == "text" and "逾期" in "".join(
                b["content"]["text"] for p, b in posts.received if p.startswith("/feishu")
            )

    kinds = [n["kind"] for n in store.inbox("clerk-1", 50, 0)[0]]
    assert sorted(kinds) == [
        "case_overdue", "meeting_cancelled", "meeting_invitation", "meeting_postponed",
    ]  # fmt: skip
    assert store.deliveries("dead", 50, 0) == []


async def test_a_stopped_smtp_server_restarted_loses_nothing(
    streams: JetStreamContext, store: NotificationStore, smtp: Any, running: Any
) -> None:
    inbox, port, controllers = smtp
    controllers.pop().stop()
    store.put_recipient(f"department:yanji:{DEPARTMENT}", DEPARTMENT, ["zjj@yanji.example"], [], [])
    for sequence in range(1, 6):
        await publish(streams, letter(uuid.uuid4(), sequence), "yanji")

    def failing() -> bool:
        rows = store.deliveries(None, 50, 0)
        return len(rows) == 5 and any(r["last_error"] for r in rows)

    await wait_until(failing, timeout=20, what="failed attempts while SMTP is down")
    assert inbox.messages == []
    controllers.append(start_smtp(inbox, port))
    await wait_until(lambda: len(inbox.messages) == 5, timeout=20, what="all five emails")
    assert len(set(inbox.ids())) == 5
    await wait_until(
        lambda: all(r["status"] == "sent" for r in store.deliveries(None, 50, 0)), timeout=5
    )


async def test_a_sender_after_a_crash_sends_again_only_what_was_in_flight_and_counts_it(
    streams: JetStreamContext, store: NotificationStore, smtp: Any
) -> None:
    inbox, port, _ = smtp
    store.put_recipient(f"department:yanji:{DEPARTMENT}", DEPARTMENT, ["zjj@yanji.example"], [], [])
    for sequence in range(1, 4):
        await publish(streams, letter(uuid.uuid4(), sequence), "yanji")
    await StreamConsumer(streams, UPSTREAMS[0], store).catch_up()
    # A sender took two, recorded one `sent` (its 250 came back), and died with the other.
    recorded, in_flight = store.claim_due(datetime.now(UTC), 2)
    store.mark_sent(recorded["id"], datetime.now(UTC))
    before = store.summary(None, datetime.now(UTC))
    assert (before["due"], before["in_flight"], before["sent"]) == (1, 1, 1)

    settings = NotificationsSettings(smtp_port=port, poll_seconds=0.05)
    async with httpx.AsyncClient() as http:
        sender = Sender(store, Channels(settings, http), settings)
        task = asyncio.create_task(sender.run())
        try:
            await wait_until(lambda: len(inbox.messages) == 2, timeout=20, what="two emails")
            await wait_until(lambda: store.summary(None, datetime.now(UTC))["sent"] == 3)
            await asyncio.sleep(0.3)  # the recorded one would have come by now
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            sender.close()
    assert len(inbox.messages) == 2
    assert f"<{recorded['id']}@shangliang>" not in inbox.ids()
    assert f"<{in_flight['id']}@shangliang>" in inbox.ids()
    after = store.summary(None, datetime.now(UTC))
    assert after["resent_after_crash"] == sender.resent_after_crash == 1
    assert (after["due"], after["in_flight"], after["sent"]) == (0, 0, 3)
    (again,) = [d for d in store.deliveries("sent", 50, 0) if d["resent_after_crash"]]
    assert again["id"] == in_flight["id"] and again["claims"] == 2


async def test_the_mail_sink_keeps_one_message_per_message_id(tmp_path: Path) -> None:
    said: list[str] = []
    sink = MailSink(tmp_path / "mail", say=said.append).start()
    try:
        for message_id in ("<a@shangliang>", "<b@shangliang>", "<a@shangliang>"):
            message = EmailMessage()
            message["From"], message["To"] = "noreply@shangliang.local", "zjj@yanji.example"
            message["Subject"], message["Message-ID"] = "督办函 / Supervision letter", message_id
            message.set_content(f"正文 {message_id}")
            await aiosmtplib.send(message, hostname=sink.host, port=sink.port)
    finally:
        sink.stop()
    assert (sink.received, sink.duplicates, len(sink.messages())) == (3, 1, 2)
    assert len(said) == 1 and "<a@shangliang>" in said[0] and said[0].startswith("邮件收件箱")


async def test_a_delivery_failing_every_attempt_is_a_dead_letter_until_resent(
    streams: JetStreamContext, store: NotificationStore, smtp: Any, tmp_path: Path
) -> None:
    inbox, port, _ = smtp
    closed = free_port("127.0.0.1")
    settings = NotificationsSettings(
        smtp_port=closed, attempts=2, backoff_initial_seconds=0.01, poll_seconds=0.05
    )
    store.put_recipient(f"department:yanji:{DEPARTMENT}", DEPARTMENT, ["zjj@yanji.example"], [], [])
    await publish(streams, letter(uuid.uuid4(), 1), "yanji")
    async with httpx.AsyncClient() as http:
        consumer = StreamConsumer(streams, UPSTREAMS[0], store)
        await consumer.catch_up()
        assert await Sender(store, Channels(settings, http), settings).send_due() == 1
        (dead,) = store.deliveries("dead", 50, 0)
        assert dead["attempts"] == 2 and "SMTP" in dead["last_error"]
        assert store.resend([dead["id"]], ["yanji"], datetime.now(UTC)) == 1
        working = settings.model_copy(update={"smtp_port": port})
        assert await Sender(store, Channels(working, http), working).send_due() == 1
    assert [m["To"] for m in inbox.messages] == ["zjj@yanji.example"]
    assert store.deliveries("dead", 50, 0) == []


async def test_reminders_survive_a_restart_and_of_two_replicas_one_sends_each_once(
    streams: JetStreamContext, smtp: Any, tmp_path: Path
) -> None:
    inbox, port, _ = smtp
    settings = NotificationsSettings(
        smtp_port=port, poll_seconds=0.05, quiet_hours="22:00-07:00", digest_hour=8
    )
    case_id = uuid.uuid4()
    await publish(
        streams,
        CaseOpenedV1(
            case_id=case_id, office="yanji", origin="referral", issue_ids=[],
            department=DEPARTMENT, deadline=date(2020, 7, 10), requirements="整治",
            opened_at=NOW,
        ),
        "yanji",
    )  # fmt: skip
    await publish(streams, letter(case_id, 3, date(2020, 7, 10)), "yanji")
    clock = [datetime(2020, 7, 6, 6, 0, tzinfo=CHINA)]  # 4 working days before: not yet
    first = open_store(Settings(data_dir=tmp_path))
    first.put_recipient(f"department:yanji:{DEPARTMENT}", DEPARTMENT, ["zjj@yanji.example"], [], [])
    first.put_recipient("leaders:yanji", "延吉市政协领导", ["leader@yanji.example"], [], [])
    await StreamConsumer(streams, UPSTREAMS[0], first).catch_up()
    scheduler = ReminderScheduler(first, settings, ["yanji"], "yanbian", lambda: clock[0])
    scheduler.scan_once()
    clock[0] = datetime(2020, 7, 7, 6, 0, tzinfo=CHINA)  # 3 working days before
    scheduler.scan_once()
    first.datastore.close()

    # Restarted: the same day's scan makes nothing new; the next morning's adds the digest.
    second = open_store(Settings(data_dir=tmp_path))
    again = ReminderScheduler(second, settings, ["yanji"], "yanbian", lambda: clock[0])
    again.scan_once()
    kinds = sorted(n["kind"] for n in second.notices(None, 50, 0)[0])
    assert kinds == ["deadline_reminder", "letter_issued"]
    clock[0] = datetime(2020, 7, 7, 8, 30, tzinfo=CHINA)  # the digest's hour
    again.scan_once()
    kinds = sorted(n["kind"] for n in second.notices(None, 50, 0)[0])
    assert kinds == ["daily_digest", "deadline_reminder", "letter_issued"]

    # Two replicas, each with its own store connection, its sender under the one lease.
    third = open_store(Settings(data_dir=tmp_path))
    night_clock = [datetime(2020, 7, 7, 23, 30, tzinfo=CHINA)]
    async with httpx.AsyncClient() as http:
        senders = [
            Sender(store, Channels(settings, http), settings, lambda: night_clock[0])
            for store in (second, third)
        ]
        assert await senders[0].send_due() == 0  # quiet hours: nothing leaves
        assert inbox.messages == []
        night_clock[0] = datetime(2020, 7, 8, 7, 0, tzinfo=CHINA)
        leases = [Lease(streams, NOTIFICATIONS_LEASE, ttl_seconds=2) for _ in senders]
        tasks = [
            asyncio.create_task(lease.run(sender.run))
            for lease, sender in zip(leases, senders, strict=True)
        ]
        try:
            await wait_until(lambda: len(inbox.messages) == 3, timeout=20, what="three emails")
            await asyncio.sleep(0.3)
            assert sum(lease.held for lease in leases) == 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            second.datastore.close()
            third.datastore.close()
    assert len(inbox.messages) == 3 and len(set(inbox.ids())) == 3
    subjects = {
        str(m["To"]): str(m["Subject"]) for m in inbox.messages if "督办函" not in m["Subject"]
    }
    assert subjects == {
        "zjj@yanji.example": "督办件 延吉政协督〔2020〕3号 将于 2020-07-10 到期 / "
        "Case 延吉政协督〔2020〕3号 is due 2020-07-10",
        "leader@yanji.example": "每日摘要 / Daily digest 2020-07-07",
    }


async def test_a_case_gets_one_reminder_and_one_deadline_day_notice_not_two_alike(
    streams: JetStreamContext, store: NotificationStore
) -> None:
    """Supervision's ladder records `reminder` and `urge` the days the scheduler reminds and
    says "due today": the department hears of each once, from the scheduler."""
    case_id, deadline = uuid.uuid4(), date(2020, 7, 10)
    key = f"department:yanji:{DEPARTMENT}"
    store.put_recipient(key, DEPARTMENT, ["zjj@yanji.example"], [], [])
    await publish(
        streams,
        CaseOpenedV1(
            case_id=case_id, office="yanji", origin="referral", issue_ids=[],
            department=DEPARTMENT, deadline=deadline, requirements="整治", opened_at=NOW,
        ),
        "yanji",
    )  # fmt: skip
    await publish(streams, letter(case_id, 4, deadline), "yanji")
    clock = [datetime(2020, 7, 7, 9, 0, tzinfo=CHINA)]
    scheduler = ReminderScheduler(
        store, NotificationsSettings(digest_hour=23), ["yanji"], "yanbian", lambda: clock[0]
    )
    consumer = StreamConsumer(streams, UPSTREAMS[0], store)
    for day, step in ((7, "reminder"), (8, None), (10, "urge")):
        clock[0] = datetime(2020, 7, day, 9, 0, tzinfo=CHINA)
        if step:
            escalated = CaseEscalatedV1(
                case_id=case_id, office="yanji", department=DEPARTMENT, step=step,
                to_office=None, escalated_at=clock[0],
            )  # fmt: skip
            await publish(streams, escalated, "yanji")
        await consumer.catch_up()
        scheduler.scan_once()
        scheduler.scan_once()
    kinds = sorted(n["kind"] for n in store.notices(None, 50, 0)[0] if n["recipient"] == key)
    assert kinds == ["deadline_reminder", "deadline_today", "letter_issued"]
    assert len(store.deliveries(None, 50, 0)) == 3


def test_digests_are_made_only_for_leaders_someone_reads_for(store: NotificationStore) -> None:
    monday = [datetime(2020, 7, 6, 9, 0, tzinfo=CHINA)]
    scheduler = ReminderScheduler(
        store, NotificationsSettings(digest_hour=8), ["yanbian", "yanji", "tumen"], "yanbian",
        lambda: monday[0],
    )  # fmt: skip
    store.put_recipient("leaders:yanji", "延吉市政协领导", ["leader@yanji.example"], [], [])
    store.put_recipient("leaders:tumen", "图们市政协领导", [], [], [])  # no address yet
    scheduler.scan_once()
    made = [(n["kind"], n["office"]) for n in store.notices(None, 50, 0)[0]]
    assert made == [("daily_digest", "yanji")]
    assert [d["address"] for d in store.deliveries(None, 50, 0)] == ["leader@yanji.example"]

    # The prefecture's leaders entered later the same day: the next scan makes theirs.
    store.put_recipient("leaders:yanbian", "延边州政协领导", [], [], ["zhou-leader"])
    monday[0] += timedelta(hours=1)
    scheduler.scan_once()
    made = sorted((n["kind"], n["office"]) for n in store.notices(None, 50, 0)[0])
    assert made == [
        ("daily_digest", "yanbian"), ("daily_digest", "yanji"), ("weekly_digest", "yanbian"),
    ]  # fmt: skip
    assert store.inbox("zhou-leader", 50, 0)[1] == 2


def test_an_inbox_notice_is_unread_until_its_user_marks_it_read(store: NotificationStore) -> None:
    store.put_recipient("leaders:yanji", "延吉市政协领导", [], [], ["leader-1", "leader-2"])
    scheduler = ReminderScheduler(
        store, NotificationsSettings(digest_hour=8), ["yanji"], "yanbian",
        lambda: datetime(2020, 7, 7, 9, 0, tzinfo=CHINA),
    )  # fmt: skip
    scheduler.scan_once()
    (notice,), _ = store.inbox("leader-1", 50, 0)
    assert notice["read_at"] is None and store.unread("leader-1") == 1
    assert not store.mark_read("leader-3", notice["id"], NOW)  # not in that user's inbox
    assert store.mark_read("leader-1", notice["id"], NOW)
    assert store.mark_read("leader-1", notice["id"], NOW + timedelta(days=1))  # again: kept
    (read,), _ = store.inbox("leader-1", 50, 0)
    assert read["read_at"] == "2020-06-01T09:00:00.000000Z"
    assert store.unread("leader-1") == 0 and store.inbox("leader-1", 50, 0, unread=True)[1] == 0
    assert store.unread("leader-2") == 1  # each user reads for themselves
