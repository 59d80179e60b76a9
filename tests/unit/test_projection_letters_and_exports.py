"""Letters drill down to their issues; exports name offices as the dashboard does and give
their columns widths; a retracted overdue is not counted, also as of a day (both stores)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from eventsourcing.persistence import Tracking
from openpyxl import load_workbook

from services.projections.main import create_app
from shared.auth import Authenticator
from shared.clock import CHINA
from shared.consumer import Delivered
from shared.contracts import (
    CaseOpenedV1,
    CaseOverdueV1,
    CaseStepsRetractedV1,
    CompletionReportedV1,
    Contract,
    Envelope,
    IssueSubmittedV1,
    LetterIssuedV1,
    RetractedStep,
)
from shared.settings import Settings
from shared.text import display_width
from tests.support.history import batches, history

CASE = UUID("0f7e2d10-0000-4000-8000-000000000001")
ISSUES = [
    UUID("0f7e2d10-0000-4000-8000-0000000000a1"),
    UUID("0f7e2d10-0000-4000-8000-0000000000a2"),
]


def china(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=CHINA)  # type: ignore[misc]


def a_case_retracted_in_time() -> list[Contract]:
    """A case of two issues whose scan recorded an overdue on 1 Jan 2021, then a letter and a
    completion typed in (back-dated to 2020) showed it done in time."""
    common = {"case_id": CASE, "office": "tumen", "department": "图们市住建局"}
    issues: list[Contract] = [
        IssueSubmittedV1(
            issue_id=issue_id,
            office="tumen",
            title=f"楼道灯不亮 {n}",
            description="夜间无照明",
            category="城市管理",
            submitted_at=china(2020, 9, 1),
        )
        for n, issue_id in enumerate(ISSUES)
    ]
    overdue_at = china(2021, 1, 1)
    return [
        *issues,
        CaseOpenedV1(
            **common,
            origin="outcome",
            issue_ids=ISSUES,
            deadline=date(2020, 12, 31),
            requirements="修复楼道灯",
            opened_at=china(2020, 10, 10, 10),
        ),
        CaseOverdueV1(**common, deadline=date(2020, 12, 31), issue_ids=ISSUES,
                      overdue_at=overdue_at),
        LetterIssuedV1(
            **common,
            number="图市政协督〔2020〕1号",
            year=2020,
            sequence=1,
            deadline=date(2020, 11, 5),
            requirements="修复楼道灯",
            issued_at=china(2020, 10, 20, 10),
        ),
        CaseStepsRetractedV1(
            **common,
            issue_ids=ISSUES,
            steps=[RetractedStep(step="overdue", deadline=date(2020, 12, 31), at=overdue_at)],
            retracted_at=china(2020, 10, 20, 10),
        ),
        CompletionReportedV1(**common, note="已修复", reported_at=china(2020, 11, 3, 10)),
    ]  # fmt: skip


@pytest.fixture
async def api(store_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Authenticator]]:
    app = create_app(store_settings)
    for stream, messages in history(60, seed=5).items():
        for part in batches(messages, 50):
            app.state.view.apply(part, Tracking(stream, part[-1].position))
    positions = {s: app.state.view.max_tracking_id(s) or 0 for s in ("INTAKE", "SUPERVISION")}
    for n, contract in enumerate(a_case_retracted_in_time()):
        stream = contract.service.upper()
        positions[stream] += 1
        envelope = Envelope.wrap(f"e-{n}", china(2026, 1, 1), contract.subject("tumen"), contract)
        message = Delivered(positions[stream], envelope, contract)
        app.state.view.apply([message], Tracking(stream, positions[stream]))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://projections"
    ) as client:
        yield client, Authenticator(store_settings)
    app.state.view.datastore.close()


def as_(auth: Authenticator, office: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.mint(office, ['viewer'])}"}


async def test_every_letter_drills_down_to_the_issues_it_covers(
    api: tuple[httpx.AsyncClient, Authenticator],
) -> None:
    client, auth = api
    tumen = as_(auth, "tumen")
    listed = (await client.get("/statistics/2020/letters_issued", headers=tumen)).json()
    ours = next(i for i in listed["items"] if i["case_id"] == str(CASE))
    assert ours["issue_ids"] == [str(i) for i in ISSUES]
    assert all(item["issue_ids"] for item in listed["items"])
    for href in ours["issue_hrefs"]:
        issue = await client.get(href, headers=tumen)
        assert issue.status_code == 200 and issue.json()["office"] == "tumen"

    exported = await client.get(
        "/statistics/2020/letters_issued", params={"format": "csv"}, headers=tumen
    )
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows and all(row["问题编号"] for row in rows)
    ours_row = next(row for row in rows if row["督办件编号"] == str(CASE))
    assert ours_row["问题编号"] == "、".join(str(i) for i in ISSUES)


async def test_exports_name_the_offices_as_the_dashboard_does(
    api: tuple[httpx.AsyncClient, Authenticator],
) -> None:
    client, auth = api
    prefecture = as_(auth, "yanbian")
    figures = await client.get("/statistics/2020", params={"format": "csv"}, headers=prefecture)
    offices = [row[0] for row in csv.reader(io.StringIO(figures.content.decode("utf-8-sig")))]
    assert offices[0] == "政协" and "图们市政协" in offices and offices[-1].startswith("合计")
    assert "tumen" not in offices
    issues = await client.get("/issues", params={"format": "csv"}, headers=as_(auth, "tumen"))
    rows = list(csv.DictReader(io.StringIO(issues.content.decode("utf-8-sig"))))
    assert rows and {row["政协"] for row in rows} == {"图们市政协"}


async def test_xlsx_exports_are_wide_enough_for_their_headers_and_cells(
    api: tuple[httpx.AsyncClient, Authenticator],
) -> None:
    client, auth = api
    answer = await client.get(
        "/statistics/2020", params={"format": "xlsx"}, headers=as_(auth, "yanbian")
    )
    sheet: Any = load_workbook(io.BytesIO(answer.content)).active
    header = [cell.value for cell in sheet[1]]
    for n, title in enumerate(header, start=1):
        width = sheet.column_dimensions[sheet.cell(1, n).column_letter].width
        assert width >= display_width(title), title


async def test_a_retracted_overdue_is_not_counted_now_or_as_of_any_day(
    api: tuple[httpx.AsyncClient, Authenticator],
) -> None:
    client, auth = api
    tumen = as_(auth, "tumen")
    for as_of in (None, "2021-01-01", "2021-06-30"):
        params = {} if as_of is None else {"as_of": as_of}
        figures = (await client.get("/statistics/2021", params=params, headers=tumen)).json()
        listed = (
            await client.get("/statistics/2021/cases_overdue", params=params, headers=tumen)
        ).json()
        assert str(CASE) not in {item["case_id"] for item in listed["items"]}, as_of
        assert figures["total"]["cases_overdue"] == listed["total"], as_of
    issue = (await client.get(f"/issues/{ISSUES[0]}", headers=tumen)).json()
    assert issue["status"] == "under_supervision"
    assert "case_overdue" not in [step["step"] for step in issue["timeline"]]
    assert "case_steps_retracted" in [step["step"] for step in issue["timeline"]]


async def test_the_years_with_data_are_listed_latest_first_for_the_readers_offices(
    api: tuple[httpx.AsyncClient, Authenticator],
) -> None:
    client, auth = api
    everyone = (await client.get("/statistics/years", headers=as_(auth, "yanbian"))).json()
    assert everyone["years"] == sorted(everyone["years"], reverse=True)
    assert 2021 in everyone["years"] and 2020 in everyone["years"]
    for office in ("tumen", "yanji"):
        own = (await client.get("/statistics/years", headers=as_(auth, office))).json()
        figures = [
            (await client.get(f"/statistics/{y}", headers=as_(auth, office))).json()["total"]
            for y in own["years"]
        ]
        assert own["years"] and all(f["issues_collected"] or f["letters_issued"] for f in figures)
    other = await client.get(
        "/statistics/years", params={"office": "tumen"}, headers=as_(auth, "yanji")
    )
    assert other.status_code == 404
