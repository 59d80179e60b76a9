"""Supervision's HTTP API on the real service (real nats-server, SQLite, ASGI): who sees and
does what, the refusals and what they leave unchanged, the printable letter."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from docx import Document
from fastapi import FastAPI
from nats.aio.client import Client

from services.supervision.domain import case_id_for_outcome
from shared.auth import Authenticator
from shared.clock import CHINA
from shared.embedded import EmbeddedNats
from shared.settings import Settings
from tests.integration.test_supervision_upstream import conclusion, publish, running_supervision
from tests.support.waiting import wait_until

HOUSING = "延吉市住房和城乡建设局"
CITY = "延吉市城市管理局"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=CHINA)


@dataclass
class Service:
    app: FastAPI
    http: httpx.AsyncClient
    tokens: Authenticator

    def as_(self, office: str, *roles: str, department: str | None = None) -> dict[str, str]:
        token = self.tokens.mint(office, list(roles), department=department)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def service(
    nats_server: EmbeddedNats, nats_client: Client, tmp_path: Path
) -> AsyncIterator[Service]:
    async with running_supervision(nats_server, tmp_path / "data", clock=lambda: NOW) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://supervision") as http:
            yield Service(app, http, Authenticator(Settings()))


@pytest.fixture
async def cases(service: Service, nats_client: Client) -> dict[str, UUID]:
    """Two yanji cases from one meeting: one for housing, one for city management."""
    meeting = conclusion(["yanji"], HOUSING, CITY)
    await publish(nats_client.jetstream(), meeting, "yanji", str(uuid4()), None)
    ids = {o.department: case_id_for_outcome(o.outcome_id) for o in meeting.outcomes}
    supervision = service.app.state.supervision
    await wait_until(
        lambda: all(i in supervision.repository for i in ids.values()), what="the two cases"
    )
    return {"housing": ids[HOUSING], "city": ids[CITY]}


def supervisor(service: Service, office: str = "yanji") -> dict[str, str]:
    return service.as_(office, "supervisor")


def housing(service: Service) -> dict[str, str]:
    return service.as_("yanji", "department", department=HOUSING)


async def post(
    service: Service, path: str, body: dict[str, Any], who: dict[str, str], key: str | None = None
) -> httpx.Response:
    headers = dict(who)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await service.http.post(path, json=body, headers=headers)


async def version(service: Service, case_id: UUID) -> int:
    return service.app.state.supervision.get_case(case_id).version


LETTER = {
    "requirements": "请于雨季前完成小区路灯修复",
    "deadline": "2020-09-30",
    "issued_at": "2020-07-02T09:00:00",
}


async def through_completion(service: Service, case_id: UUID) -> None:
    steps: list[tuple[str, dict[str, Any], Callable[[Service], dict[str, str]]]] = [
        ("letters", LETTER, supervisor),
        ("acknowledgement", {"acknowledged_at": "2020-07-03T10:00:00+08:00"}, housing),
        ("progress", {"note": "已排查线路", "reported_at": "2020-07-20T10:00:00"}, housing),
        (
            "follow-ups",
            {
                "kind": "inspection",
                "held_at": "2020-08-06T14:30:00",
                "members": ["金委员", "朴委员"],
            },
            supervisor,
        ),
        ("completion", {"note": "路灯已全部修复", "reported_at": "2020-09-20T10:00:00"}, housing),
    ]
    for path, body, who in steps:
        response = await post(service, f"/cases/{case_id}/{path}", body, who(service))
        assert response.status_code in (200, 201), (path, response.text)


async def test_the_whole_lifecycle_over_http(service: Service, cases: dict[str, UUID]) -> None:
    case_id = cases["housing"]
    letter = await post(service, f"/cases/{case_id}/letters", LETTER, supervisor(service))
    assert letter.status_code == 201, letter.text
    assert letter.json()["number"] == "延市政协督〔2020〕1号"
    assert letter.json()["issued_at"] == "2020-07-02T09:00:00+08:00"  # naive means China time

    steps = [
        ("acknowledgement", {"acknowledged_at": "2020-07-03T10:00:00"}, housing, "acknowledged"),
        (
            "progress",
            {"note": "已排查线路", "reported_at": "2020-07-20T10:00:00"},
            housing,
            "in_progress",
        ),
        (
            "progress",
            {"note": "已更换一半", "reported_at": "2020-08-20T10:00:00"},
            housing,
            "in_progress",
        ),
        (
            "follow-ups",
            {
                "kind": "symposium",
                "held_at": "2020-08-27T14:30:00",
                "members": ["金委员"],
                "note": "座谈",
            },
            supervisor,
            "in_progress",
        ),
        (
            "completion",
            {"note": "路灯已全部修复", "reported_at": "2020-09-20T10:00:00"},
            housing,
            "completed",
        ),
        (
            "send-back",
            {
                "reason": "两处仍不亮",
                "deadline": "2020-10-30",
                "reopened_at": "2020-09-22T10:00:00",
            },
            supervisor,
            "reopened",
        ),
        (
            "completion",
            {"note": "剩余路灯已修复", "reported_at": "2020-10-20T10:00:00"},
            housing,
            "completed",
        ),
        ("verification", {"verified_at": "2020-10-22T10:00:00"}, supervisor, "verified"),
    ]
    for path, body, who, status in steps:
        response = await post(service, f"/cases/{case_id}/{path}", body, who(service))
        assert response.status_code == 200, (path, response.text)
        assert response.json()["status"] == status, path

    case = (await service.http.get(f"/cases/{case_id}", headers=supervisor(service))).json()
    assert (case["deadline"], case["overdue"], len(case["progress"])) == ("2020-10-30", False, 2)
    assert [f["kind"] for f in case["follow_ups"]] == ["symposium"]
    assert [h["event"] for h in case["history"]][-3:] == [
        "reopened",
        "completion_reported",
        "verified",
    ]


async def test_a_department_sees_and_acts_on_only_its_own_cases(
    service: Service, cases: dict[str, UUID]
) -> None:
    for case_id in cases.values():
        assert (
            await post(service, f"/cases/{case_id}/letters", LETTER, supervisor(service))
        ).status_code == 201

    listed = await service.http.get("/cases", headers=housing(service))
    assert [c["id"] for c in listed.json()["items"]] == [str(cases["housing"])]
    other = await service.http.get(f"/cases/{cases['city']}", headers=housing(service))
    assert other.status_code == 404
    before = await version(service, cases["city"])
    refused = await post(service, f"/cases/{cases['city']}/acknowledgement", {}, housing(service))
    assert refused.status_code == 404
    assert await version(service, cases["city"]) == before

    office = await service.http.get("/cases", headers=service.as_("yanji", "viewer"))
    prefecture = await service.http.get("/cases", headers=service.as_("yanbian", "viewer"))
    tumen = await service.http.get("/cases", headers=service.as_("tumen", "viewer"))
    assert office.json()["total"] == prefecture.json()["total"] == 2
    assert tumen.json()["total"] == 0
    assert (
        await service.http.get(f"/cases/{cases['city']}", headers=service.as_("tumen", "viewer"))
    ).status_code == 404
    by_department = await service.http.get(
        "/cases",
        params={"department": CITY, "status": "letter_issued"},
        headers=service.as_("yanbian", "viewer"),
    )
    assert [c["id"] for c in by_department.json()["items"]] == [str(cases["city"])]


async def test_the_prefecture_reads_a_countys_case_but_does_not_act_on_it(
    service: Service, cases: dict[str, UUID]
) -> None:
    response = await post(
        service, f"/cases/{cases['housing']}/letters", LETTER, supervisor(service, "yanbian")
    )
    assert response.status_code == 403
    assert await version(service, cases["housing"]) == 1


@pytest.mark.parametrize(
    ("before", "path", "body", "who", "code", "named"),
    [
        ("opened", "verification", {}, supervisor, 409, "opened"),
        ("completed", "letters", LETTER, supervisor, 409, "completed"),
        ("letter", "progress", {"note": "开始"}, housing, 409, "letter_issued"),
        ("opened", "letters", {**LETTER, "deadline": "2020-07-01"}, supervisor, 422, "deadline"),
        (
            "opened",
            "letters",
            {"requirements": "x", "working_days": 15, "issued_at": "2026-12-20T09:00:00"},
            supervisor,
            422,
            "working_days",
        ),
        (
            "opened",
            "letters",
            {"requirements": "x", "issued_at": "2020-07-02T09:00:00"},
            supervisor,
            422,
            "deadline",
        ),
        (
            "completed",
            "send-back",
            {"reason": "x", "deadline": "2020-09-01", "reopened_at": "2020-09-21T09:00:00"},
            supervisor,
            422,
            "deadline",
        ),
        (
            "letter",
            "acknowledgement",
            {"acknowledged_at": "2027-01-01T09:00:00"},
            housing,
            422,
            "acknowledged_at",
        ),
        (
            "letter",
            "follow-ups",
            {"kind": "picnic", "held_at": "2020-08-01T09:00:00", "members": ["金委员"]},
            supervisor,
            422,
            "kind",
        ),
        ("letter", "acknowledgement", {}, supervisor, 403, "department"),
        ("letter", "verification", {}, housing, 403, "supervisor"),
    ],
    ids=[
        "verifying a case that has not reported completion",
        "a letter while the department works",
        "progress before acknowledgement",
        "a deadline before the letter",
        "working days into a year the calendar does not cover",
        "a letter with neither deadline nor working days",
        "a send-back deadline before the send-back",
        "an acknowledgement in the future",
        "an unknown follow-up kind",
        "a supervisor acknowledging for the department",
        "a department verifying its own work",
    ],
)
async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
    service: Service,
    cases: dict[str, UUID],
    before: str,
    path: str,
    body: dict[str, Any],
    who: Callable[[Service], dict[str, str]],
    code: int,
    named: str,
) -> None:
    case_id = cases["housing"]
    if before == "letter":
        assert (
            await post(service, f"/cases/{case_id}/letters", LETTER, supervisor(service))
        ).status_code == 201
    elif before == "completed":
        await through_completion(service, case_id)
    stored = await version(service, case_id)

    response = await post(service, f"/cases/{case_id}/{path}", body, who(service))

    assert response.status_code == code, response.text
    assert named in response.text
    assert "/" in (response.json().get("message") or response.json()["detail"])  # 中文 / English
    assert await version(service, case_id) == stored


async def test_a_progress_report_on_a_verified_case_is_refused(
    service: Service, cases: dict[str, UUID]
) -> None:
    case_id = cases["housing"]
    await through_completion(service, case_id)
    assert (
        await post(service, f"/cases/{case_id}/verification", {}, supervisor(service))
    ).status_code == 200
    stored = await version(service, case_id)
    response = await post(
        service, f"/cases/{case_id}/progress", {"note": "还在做"}, housing(service)
    )
    assert response.status_code == 409
    assert "verified" in response.json()["detail"]
    assert await version(service, case_id) == stored


async def test_an_idempotency_key_returns_the_first_answer_and_refuses_another_body(
    service: Service, cases: dict[str, UUID]
) -> None:
    path = f"/cases/{cases['housing']}/letters"
    first = await post(service, path, LETTER, supervisor(service), key="letter-1")
    retry = await post(service, path, LETTER, supervisor(service), key="letter-1")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json() == first.json()
    stored = await version(service, cases["housing"])
    other = await post(
        service, path, {**LETTER, "deadline": "2020-10-30"}, supervisor(service), key="letter-1"
    )
    assert other.status_code == 409
    assert await version(service, cases["housing"]) == stored
    # The next case's letter takes number 2: the retry took none.
    second = await post(service, f"/cases/{cases['city']}/letters", LETTER, supervisor(service))
    assert second.json()["number"] == "延市政协督〔2020〕2号"


async def test_a_deadline_in_working_days_skips_the_national_day_holiday(
    service: Service, cases: dict[str, UUID]
) -> None:
    body = {"requirements": "限期整改", "working_days": 5, "issued_at": "2020-09-25T09:00:00"}
    response = await post(service, f"/cases/{cases['housing']}/letters", body, supervisor(service))
    assert response.status_code == 201, response.text
    assert response.json()["deadline"] == "2020-10-09"


async def test_the_letter_downloads_as_a_printable_docx(
    service: Service, cases: dict[str, UUID]
) -> None:
    issued = await post(service, f"/cases/{cases['housing']}/letters", LETTER, supervisor(service))
    response = await service.http.get(issued.json()["document"], headers=housing(service))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    text = [p.text for p in Document(io.BytesIO(response.content)).paragraphs]
    assert text[:3] == [
        "政协延吉市委员会",
        "议政协商会议议题办理情况督办函",
        "延市政协督〔2020〕1号",
    ]
    assert f"{HOUSING}：" in text
    assert LETTER["requirements"] in text
    assert any("2020年9月30日前" in line for line in text)
    assert text[-1] == "2020年7月2日"
    missing = await service.http.get(
        f"/cases/{cases['housing']}/letters/9.docx", headers=housing(service)
    )
    assert missing.status_code == 404
    other = await service.http.get(
        issued.json()["document"], headers=service.as_("tumen", "viewer")
    )
    assert other.status_code == 404


async def test_requirements_with_control_characters_are_refused_and_a_letter_stored_so_downloads(
    service: Service, cases: dict[str, UUID]
) -> None:
    """Found by the fuzzer: such requirements were stored as typed and the DOCX refused them
    (500). A request now gets 422 (docs/API.md); a letter stored before still downloads."""
    requirements = "请于雨季前\x01完成\x0b路灯修复\ufffe"
    body = {**LETTER, "requirements": requirements}
    before = await version(service, cases["housing"])
    refused = await post(service, f"/cases/{cases['housing']}/letters", body, supervisor(service))
    assert refused.status_code == 422, refused.text
    assert "requirements" in refused.json()["message"]
    assert await version(service, cases["housing"]) == before

    issued_at = datetime(2020, 7, 2, 9, 0, tzinfo=CHINA)
    _, letter, _ = await service.app.state.supervision.issue_letter(
        cases["housing"], requirements, date(2020, 9, 30), None, issued_at, NOW, lambda _: None
    )
    document = f"/cases/{cases['housing']}/letters/{letter.sequence}.docx"
    response = await service.http.get(document, headers=housing(service))
    assert response.status_code == 200, response.text
    text = [p.text for p in Document(io.BytesIO(response.content)).paragraphs]
    assert "请于雨季前完成路灯修复" in text


async def test_the_service_scheduler_marks_a_back_dated_case_overdue(
    nats_server: EmbeddedNats, nats_client: Client, tmp_path: Path
) -> None:
    meeting = conclusion(["yanji"], HOUSING)
    case_id = case_id_for_outcome(meeting.outcomes[0].outcome_id)
    async with running_supervision(
        nats_server, tmp_path / "data", clock=lambda: NOW, scan_interval=0.05
    ) as app:
        await publish(nats_client.jetstream(), meeting, "yanji", str(uuid4()), None)
        supervision = app.state.supervision
        await wait_until(
            lambda: case_id in supervision.repository and supervision.get_case(case_id).overdue,
            what="the case overdue",
        )
        case = supervision.get_case(case_id)
        assert case.overdue_deadlines == [date(2020, 8, 31)]
        assert [s for s, _, _ in case.escalations] == ["reminder", "urge", "escalate"]


async def test_a_supervisor_runs_the_deadline_scan_at_once_and_a_second_changes_nothing(
    service: Service, cases: dict[str, UUID]
) -> None:
    refused = await service.http.post("/scheduler/scan", headers=service.as_("yanji", "clerk"))
    assert refused.status_code == 403

    first = await service.http.post("/scheduler/scan", headers=supervisor(service))
    again = await service.http.post("/scheduler/scan", headers=supervisor(service))

    assert first.status_code == again.status_code == 200
    assert first.json()["changed"] == 2  # both 2020 cases are past their deadline
    assert again.json()["changed"] == 0
    assert service.app.state.supervision.get_case(cases["housing"]).overdue
    history = await service.http.get(
        f"/cases/{cases['housing']}/history", headers=supervisor(service)
    )
    overdue = [e for e in history.json()["entries"] if e["event"] == "BecameOverdue"]
    assert [(e["actor"]["subject"], e["actor"]["request_id"]) for e in overdue] == [
        ("system:scheduler", first.headers["x-request-id"])
    ]
