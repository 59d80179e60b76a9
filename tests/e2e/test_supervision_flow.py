"""A meeting outcome followed to its verification on the real stack (`shangliang up`): the
case opens from the MEETINGS stream, the office and the department drive it over HTTP, and
CaseVerifiedV1 reaches the SUPERVISION stream naming the issues."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
from docx import Document

from shared.clock import CHINA
from shared.contracts import CaseVerifiedV1, Envelope, MeetingConcludedV1, Outcome, decode
from shared.streams import SUPERVISION_STREAM
from tests.support.http import bearer
from tests.support.stack import RunningStack
from tests.support.streams import publish_as_relay, read_stream

DEPARTMENT = "延吉市住房和城乡建设局"


async def wait_for_case(
    http: httpx.AsyncClient, meeting_id: UUID, viewer: dict[str, str]
) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = await http.get("/cases", params={"meeting_id": str(meeting_id)}, headers=viewer)
        assert found.status_code == 200, found.text
        if found.json()["items"]:
            (case,) = found.json()["items"]
            return case
        await asyncio.sleep(0.05)
    raise AssertionError("no case opened from the meeting outcome within 10 s")


async def test_a_meeting_outcome_is_supervised_until_verified_and_published(
    stack: RunningStack, mint: Callable[..., str]
) -> None:
    issue_ids = [uuid4(), uuid4()]
    meeting = MeetingConcludedV1(
        meeting_id=uuid4(),
        offices=["yanji"],
        kind="thematic",
        title="老旧小区路灯照明专题协商会",
        concluded_at=datetime(2020, 6, 30, 16, 0, tzinfo=CHINA),
        outcomes=[
            Outcome(
                outcome_id=uuid4(),
                issue_ids=issue_ids,
                recommendation="请住建局于雨季前修复老旧小区路灯",
                department=DEPARTMENT,
                deadline=date(2020, 9, 30),
            )
        ],
    )
    nc = await stack.connect_as("admin")  # an operator: publishes for meetings, reads all
    try:
        js = nc.jetstream()
        event_id = str(uuid4())
        envelope = Envelope.wrap(event_id, datetime.now(UTC), meeting.subject("yanji"), meeting)
        await publish_as_relay(js, meeting.subject("yanji"), envelope.to_bytes(), event_id, None)

        async with httpx.AsyncClient(base_url=stack.supervision, timeout=10) as http:
            case = await wait_for_case(http, meeting.meeting_id, bearer(mint("yanji", "viewer")))
            assert (case["status"], case["department"], case["issue_ids"]) == (
                "opened",
                DEPARTMENT,
                [str(i) for i in issue_ids],
            )
            path = f"/cases/{case['id']}"
            office = bearer(mint("yanji", "supervisor"))
            department = bearer(mint("yanji", "department", department=DEPARTMENT))
            steps: list[tuple[str, dict[str, Any], dict[str, str], int]] = [
                (
                    "letters",
                    {
                        "requirements": case["requirements"],
                        "working_days": 20,
                        "issued_at": "2020-07-02T09:00:00",
                    },
                    office,
                    201,
                ),
                ("acknowledgement", {"acknowledged_at": "2020-07-03T10:00:00"}, department, 200),
                (
                    "progress",
                    {"note": "已排查线路", "reported_at": "2020-07-20T10:00:00"},
                    department,
                    200,
                ),
                (
                    "follow-ups",
                    {
                        "kind": "inspection",
                        "held_at": "2020-07-16T14:30:00",
                        "members": ["金委员", "朴委员"],
                        "note": "现场视察",
                    },
                    office,
                    200,
                ),
                (
                    "completion",
                    {"note": "路灯已全部修复", "reported_at": "2020-07-28T10:00:00"},
                    department,
                    200,
                ),
                ("verification", {"verified_at": "2020-08-10T10:00:00"}, office, 200),
            ]
            for step, body, who, code in steps:
                response = await http.post(
                    f"{path}/{step}", json=body, headers={**who, "Idempotency-Key": step}
                )
                assert response.status_code == code, (step, response.text)

            done = (await http.get(path, headers=office)).json()
            assert done["status"] == "verified" and not done["overdue"]
            (letter,) = done["letters"]
            # 20 working days from 2 Jul 2020 (no holiday in between): 30 Jul.
            assert (letter["number"], letter["deadline"]) == ("延市政协督〔2020〕1号", "2020-07-30")
            document = await http.get(letter["document"], headers=department)
            paragraphs = [p.text for p in Document(io.BytesIO(document.content)).paragraphs]
            assert "延市政协督〔2020〕1号" in paragraphs

        async def verified_on_stream() -> CaseVerifiedV1 | None:
            for message in await read_stream(js, SUPERVISION_STREAM):
                _, contract = decode(message.data)
                if isinstance(contract, CaseVerifiedV1) and str(contract.case_id) == case["id"]:
                    return contract
            return None

        deadline = time.monotonic() + 10
        while (verified := await verified_on_stream()) is None:
            assert time.monotonic() < deadline, "CaseVerifiedV1 not on the SUPERVISION stream"
            await asyncio.sleep(0.1)
        assert verified.issue_ids == issue_ids
        assert verified.verified_at == datetime(2020, 8, 10, 10, 0, tzinfo=CHINA)
    finally:
        await nc.close()


async def test_a_case_done_in_time_but_typed_in_after_the_scan_is_not_counted_overdue(
    stack: RunningStack, mint: Callable[..., str]
) -> None:
    """The trial's case: the scan judged it by the outcome's deadline (31 Dec) before its
    letter (deadline 5 Nov) and completion (3 Nov) were typed in, back-dated."""
    meeting = MeetingConcludedV1(
        meeting_id=uuid4(),
        offices=["tumen"],
        kind="onsite",
        title="农贸市场环境整治现场协商会",
        concluded_at=datetime(2020, 10, 10, 16, 0, tzinfo=CHINA),
        outcomes=[
            Outcome(
                outcome_id=uuid4(),
                issue_ids=[uuid4()],
                recommendation="请住建局年内整治农贸市场周边环境",
                department=DEPARTMENT,
                deadline=date(2020, 12, 31),
            )
        ],
    )
    nc = await stack.connect_as("admin")
    try:
        event_id = str(uuid4())
        envelope = Envelope.wrap(event_id, datetime.now(UTC), meeting.subject("tumen"), meeting)
        js = nc.jetstream()
        await publish_as_relay(js, meeting.subject("tumen"), envelope.to_bytes(), event_id, None)
    finally:
        await nc.close()
    office = bearer(mint("tumen", "supervisor"))
    department = bearer(mint("tumen", "department", department=DEPARTMENT))
    async with httpx.AsyncClient(base_url=stack.supervision, timeout=10) as http:
        case = await wait_for_case(http, meeting.meeting_id, office)
        path = f"/cases/{case['id']}"
        assert (await http.post("/scheduler/scan", headers=office)).status_code == 200
        assert (await http.get(path, headers=office)).json()["overdue"]
        for step, body, who in (
            ("letters", {"requirements": "限期整治", "deadline": "2020-11-05",
                         "issued_at": "2020-10-20T09:00:00"}, office),
            ("acknowledgement", {"acknowledged_at": "2020-10-21T09:00:00"}, department),
            ("completion", {"note": "已整治", "reported_at": "2020-11-03T10:00:00"}, department),
            ("verification", {"verified_at": "2020-11-04T10:00:00"}, office),
        ):  # fmt: skip
            answer = await http.post(f"{path}/{step}", json=body, headers=who)
            assert answer.status_code in (200, 201), (step, answer.text)
        done = (await http.get(path, headers=office)).json()
    assert done["status"] == "verified" and not done["overdue"]
    # The scan's 催办, overdue and 提级督办 of 31 Dec are withdrawn, kept in the history.
    assert [e for e in done["escalations"] if e["deadline"] == "2020-12-31"] == []
    assert "steps_retracted" in [step["event"] for step in done["history"]]

    viewer = bearer(mint("tumen", "viewer"))
    async with httpx.AsyncClient(base_url=stack.projections, timeout=10) as read_side:

        async def caught_up() -> bool:
            letters = await read_side.get("/statistics/2020/letters_issued", headers=viewer)
            overdue = await read_side.get("/statistics/2021/cases_overdue", headers=viewer)
            return case["id"] in {i["case_id"] for i in letters.json()["items"]} and case[
                "id"
            ] not in {i["case_id"] for i in overdue.json()["items"]}

        deadline = time.monotonic() + 15
        while not await caught_up():
            assert time.monotonic() < deadline, "the read side still counts the case overdue"
            await asyncio.sleep(0.1)
        for as_of in ({}, {"as_of": "2021-01-01"}, {"as_of": "2021-06-30"}):
            figures = await read_side.get("/statistics/2021", params=as_of, headers=viewer)
            listed = await read_side.get(
                "/statistics/2021/cases_overdue", params=as_of, headers=viewer
            )
            assert figures.json()["total"]["cases_overdue"] == listed.json()["total"], as_of
            assert case["id"] not in {i["case_id"] for i in listed.json()["items"]}, as_of
