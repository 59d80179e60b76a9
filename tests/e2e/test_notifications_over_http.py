"""Notifications on the real stack (`shangliang up --mail-sink`, SQLite then PostgreSQL): a
letter supervision issues reaches the department by email in the local mail sink, with the
very letter supervision serves attached, and the department user's in-app inbox; bad
directory input is refused with a clear 4xx and changes nothing."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.message import EmailMessage
from uuid import uuid4

import httpx
from docx import Document

from shared.clock import CHINA
from shared.contracts import Envelope, MeetingConcludedV1, Outcome
from tests.e2e.test_supervision_flow import wait_for_case
from tests.support.http import bearer
from tests.support.stack import RunningStack
from tests.support.streams import publish_as_relay

DEPARTMENT = "延吉市城市管理综合行政执法局"
KEY = urllib.parse.quote(f"department:yanji:{DEPARTMENT}", safe="")


def letters_in_sink(stack: RunningStack) -> list[EmailMessage]:
    found = []
    for path in sorted((stack.data_dir / "mail").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if DEPARTMENT in message.get_body(("plain",)).get_content():
            found.append(message)
    return found


async def test_an_issued_letter_reaches_the_department_by_email_and_inbox(
    stack: RunningStack, mint: Callable[..., str]
) -> None:
    admin = bearer(mint("yanji", "admin"))
    entry = {"name": DEPARTMENT, "emails": ["cgj@yanji.example"], "users": ["e2e-yanji"]}
    async with httpx.AsyncClient(base_url=stack.notifications, timeout=10) as http:
        assert (await http.put(f"/recipients/{KEY}", json=entry, headers=admin)).status_code == 200

        refused = await http.put("/recipients/nobody", json=entry, headers=admin)
        assert refused.status_code == 422 and "key" in refused.text
        bad = await http.put(f"/recipients/{KEY}", json={**entry, "emails": ["x"]}, headers=admin)
        assert bad.status_code == 422 and "邮箱地址无效" in bad.text
        other = await http.get("/recipients/office:tumen", headers=admin)
        assert other.status_code == 404
        assert (await http.get(f"/recipients/{KEY}")).status_code == 401
        clerk = await http.get(f"/recipients/{KEY}", headers=bearer(mint("yanji", "clerk")))
        assert clerk.status_code == 403
        kept = await http.get(f"/recipients/{KEY}", headers=admin)
        assert kept.json()["emails"] == ["cgj@yanji.example"]

    meeting = MeetingConcludedV1(
        meeting_id=uuid4(),
        offices=["yanji"],
        kind="onsite",
        title="背街小巷环境整治现场协商会",
        concluded_at=datetime(2020, 7, 1, 16, 0, tzinfo=CHINA),
        outcomes=[
            Outcome(
                outcome_id=uuid4(),
                issue_ids=[uuid4()],
                recommendation="请城管局清理背街小巷占道经营",
                department=DEPARTMENT,
                deadline=date(2020, 9, 30),
            )
        ],
    )
    nc = await stack.connect_as("admin")
    try:
        event_id = str(uuid4())
        envelope = Envelope.wrap(event_id, datetime.now(UTC), meeting.subject("yanji"), meeting)
        await publish_as_relay(
            nc.jetstream(), meeting.subject("yanji"), envelope.to_bytes(), event_id, None
        )
    finally:
        await nc.close()

    async with httpx.AsyncClient(base_url=stack.supervision, timeout=10) as http:
        case = await wait_for_case(http, meeting.meeting_id, bearer(mint("yanji", "viewer")))
        issued = await http.post(
            f"/cases/{case['id']}/letters",
            json={
                "requirements": "清理占道经营",
                "working_days": 20,
                "issued_at": "2020-07-02T09:00:00",
            },
            headers={**bearer(mint("yanji", "supervisor")), "Idempotency-Key": "letter"},
        )
        assert issued.status_code == 201, issued.text
        served = await http.get(
            issued.headers["Location"],
            headers=bearer(mint("yanji", "department", department=DEPARTMENT)),
        )
    number = issued.json()["number"]

    deadline = time.monotonic() + 20
    while not (found := letters_in_sink(stack)):
        assert time.monotonic() < deadline, "no letter in the mail sink within 20 s"
        await asyncio.sleep(0.1)
    (mail,) = found
    assert mail["To"] == "cgj@yanji.example"
    assert mail["Subject"].startswith(f"督办函 {number}")
    (part,) = list(mail.iter_attachments())
    sent = part.get_payload(decode=True)
    assert isinstance(sent, bytes)

    def text(document: bytes) -> list[str]:
        return [p.text for p in Document(io.BytesIO(document)).paragraphs]

    assert text(sent) == text(served.content)  # the letter supervision serves, word for word

    user = bearer(mint("yanji", "viewer"))
    async with httpx.AsyncClient(base_url=stack.notifications, timeout=10) as http:
        inbox = await http.get("/inbox", headers=user)
        assert [n["kind"] for n in inbox.json()["items"]] == ["letter_issued"]
        (notice,) = inbox.json()["items"]
        assert notice["read_at"] is None
        assert (await http.get("/inbox/unread", headers=user)).json() == {"unread": 1}
        read = f"/inbox/{notice['id']}/read"
        other = bearer(mint("tumen", "viewer"))  # another user: not in its inbox
        assert (await http.post(read, headers=other)).status_code == 404
        bad = await http.post("/inbox/not-an-id/read", headers=user)
        assert bad.status_code == 422 and "notice_id" in bad.text
        assert (await http.post(read, headers=user)).status_code == 204
        assert (await http.post(read, headers=user)).status_code == 204  # again: no change
        assert (await http.get("/inbox/unread", headers=user)).json() == {"unread": 0}
        unread = await http.get("/inbox", params={"unread": "true"}, headers=user)
        assert unread.json()["total"] == 0
        assert (await http.get("/inbox", headers=user)).json()["items"][0]["read_at"]
