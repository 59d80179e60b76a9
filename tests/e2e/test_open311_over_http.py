"""The residents' channel on the real stack (`shangliang up`): an Open311 client (the
third-party `georeport` library, and plain form posts where it has no POST) submits, lists
and reads a request; the office screens and refers it, the department completes, the
supervisor verifies, and Open311 says `closed` with notes; the tracking code shows the
public timeline; an unsatisfied follow-up call reopens the issue and its case."""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import uuid4

import httpx
import pytest
from georeport import GeoReport
from playwright.sync_api import sync_playwright

from shared.clock import CHINA
from tests.e2e.test_dashboard import CHROMIUM, CHROMIUM_FLAGS
from tests.support.fuzzing import Target, fuzz
from tests.support.http import bearer
from tests.support.stack import ROOT, RunningStack, shangliang

T = TypeVar("T")
DEPARTMENT = "延吉市城市管理局"


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 15) -> T:
    deadline = time.monotonic() + timeout
    while (found := await probe()) is None:
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.1)
    return found


def open311_cli(stack: RunningStack, action: str, *args: str) -> str:
    """`shangliang open311 key …`, as an operator runs it against the running intake."""
    env = {**os.environ, "SHANGLIANG_DATA_DIR": str(stack.data_dir)}
    done = subprocess.run(
        shangliang("open311", "key", action, "--office", "yanji", *args, "--url", stack.intake),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def issue_key(stack: RunningStack) -> str:
    return open311_cli(stack, "issue", "--label", "e2e 小程序")


@pytest.fixture(scope="module")
def event_store() -> dict[str, str]:
    """SQLite stores only (the suite's ten minutes): Open311 is intake's own routes over the
    store code every other e2e module runs on PostgreSQL too; the fuzz counts the SQLite file."""
    return {}


@pytest.fixture(scope="module")
def api_key(stack: RunningStack) -> str:
    return issue_key(stack)


def post_request(stack: RunningStack, key: str, fmt: str = "json", **fields: Any) -> httpx.Response:
    form = {
        "api_key": key,
        "jurisdiction_id": "yanji",
        "service_code": "城市管理",
        "lat": "42.9048",
        "long": "129.5061",
        "description": f"进学街路灯不亮 {uuid4().hex[:6]}",
        "media_url": "https://example.org/photos/lamp.jpg",
        "first_name": "芳",
        "last_name": "王",
        "phone": "13800000000",
        **fields,
    }
    return httpx.post(f"{stack.intake}/open311/v2/requests.{fmt}", data=form, timeout=10)


async def test_an_open311_request_is_followed_until_closed_and_reopened_by_the_resident(
    stack: RunningStack, api_key: str, mint: Callable[..., str]
) -> None:
    client = GeoReport(f"{stack.intake}/open311/v2", jurisdiction="yanji", api_key=api_key)
    services = await asyncio.to_thread(client.get_service_list)
    assert "城市管理" in [s["service_code"] for s in services]
    definition = await asyncio.to_thread(client.get_service_definition, "城市管理")
    assert definition == {"service_code": "城市管理", "attributes": []}

    description = f"进学街路灯不亮 {uuid4().hex[:6]}"
    first = post_request(stack, api_key, description=description)
    retried = post_request(stack, api_key, description=description)
    assert (first.status_code, retried.status_code) == (201, 200), first.text
    assert first.json() == retried.json()
    (answer,) = first.json()
    request_id, code = answer["service_request_id"], answer["token"]

    listed = await asyncio.to_thread(client.get_service_requests)
    assert [r["service_request_id"] for r in listed].count(request_id) == 1
    one = await asyncio.to_thread(client.get_service_request, request_id)
    assert (one["status"], one["lat"], one["media_url"]) == (
        "open", 42.9048, "https://example.org/photos/lamp.jpg"
    )  # fmt: skip
    assert "王" not in str(one) and "13800000000" not in str(one)
    as_xml = GeoReport(f"{stack.intake}/open311/v2", jurisdiction="yanji", output_format="xml")
    assert (await asyncio.to_thread(as_xml.get_service_request, request_id))["status"] == "open"

    leader, clerk = bearer(mint("yanji", "leader")), bearer(mint("yanji", "clerk"))
    async with (
        httpx.AsyncClient(base_url=stack.intake, timeout=10) as intake,
        httpx.AsyncClient(base_url=stack.supervision, timeout=10) as supervision,
    ):
        issue = (await intake.get(f"/issues/{request_id}", headers=clerk)).json()
        assert (issue["source"], issue["reporter_phone"], issue["tracking_code"]) == (
            "online", "13800000000", code
        )  # fmt: skip
        deadline = (datetime.now(CHINA) + timedelta(days=30)).date().isoformat()
        screened = await intake.post(
            f"/issues/{request_id}/screening",
            json={"decision": "refer", "department": DEPARTMENT, "deadline": deadline},
            headers=leader,
        )
        assert screened.status_code == 200, screened.text

        office = bearer(mint("yanji", "supervisor"))
        department = bearer(mint("yanji", "department", department=DEPARTMENT))

        async def the_case() -> dict[str, Any] | None:
            found = await supervision.get("/cases", params={"issue_id": request_id}, headers=office)
            items = found.json()["items"]
            return items[0] if items else None

        case = await eventually(the_case, "a case opened from the referral")
        path = f"/cases/{case['id']}"
        for step, body, who in [
            ("letters", {"requirements": "请尽快修复", "working_days": 10}, office),
            ("acknowledgement", {}, department),
            ("completion", {"note": "已更换灯具"}, department),
            ("verification", {}, office),
        ]:
            done = await supervision.post(f"{path}/{step}", json=body, headers=who)
            assert done.status_code in (200, 201), (step, done.text)

        async def closed() -> dict[str, Any] | None:
            got = await intake.get(f"/open311/v2/requests/{request_id}.json")
            (row,) = got.json()
            return row if row["status"] == "closed" else None

        row = await eventually(closed, "the Open311 status closed")
        assert row["agency_responsible"] == DEPARTMENT
        assert "已更换灯具" in row["status_notes"]
        assert row["expected_datetime"].startswith(deadline)

        public = await intake.get(f"/track/{code}")
        assert public.status_code == 200
        steps = [s["step"] for s in public.json()["timeline"]]
        assert steps == ["received", "screened", "department", "completed", "resolved"]
        assert "王" not in public.text and "13800000000" not in public.text
        page = await intake.get(f"/track/{code}/page")
        assert "已解决" in page.text and DEPARTMENT in page.text
        for other in (f"/track/{code}?office=tumen", f"/track/{'x' * len(code)}"):
            missing = await intake.get(other)
            assert missing.status_code == 404, other

        year = datetime.now(CHINA).year
        viewer = bearer(mint("yanji", "viewer"))

        async def figures() -> dict[str, Any]:
            async with httpx.AsyncClient(base_url=stack.projections, timeout=10) as projections:
                got = await projections.get(f"/statistics/{year}", headers=viewer)
                assert got.status_code == 200, got.text
                total: dict[str, Any] = got.json()["total"]
                return total

        async def resolved_counted() -> dict[str, Any] | None:
            total = await figures()
            return total if total["issues_resolved"] >= 1 else None

        before = await eventually(resolved_counted, "the resolution in the statistics")
        called = await intake.post(
            f"/issues/{request_id}/callbacks",
            json={"reached": True, "satisfaction": "unsatisfied", "note": "灯又不亮了"},
            headers=clerk,
        )
        assert called.status_code == 200, called.text
        assert called.json()["status"] == "referred"

        async def sent_back() -> dict[str, Any] | None:
            got = (await supervision.get(path, headers=office)).json()
            return got if got["status"] == "reopened" else None

        case = await eventually(sent_back, "the case sent back after the unsatisfied call")
        # The escalation counts it: the case went up to the prefecture at once.
        assert [e["step"] for e in case["escalations"]] == ["escalate"], case["escalations"]

        async def counted() -> dict[str, Any] | None:
            total = await figures()
            # The call comes on INTAKE, the case's send-back on SUPERVISION: both counted.
            moved = [
                total[f] > before[f] for f in ("issues_called_back", "cases_reopened_by_callback")
            ]
            return total if all(moved) else None

        after = await eventually(counted, "the call in the statistics")
        for figure, moved in (("issues_called_back", 1), ("callbacks_reached", 1),
                              ("callbacks_satisfied", 0), ("issues_resolved", 0),
                              ("cases_reopened_by_callback", 1)):  # fmt: skip
            assert after[figure] == before[figure] + moved, figure
        reopened = (await intake.get(f"/open311/v2/requests/{request_id}.json")).json()[0]
        assert reopened["status"] == "open"


async def test_the_public_timeline_names_the_meeting_that_took_the_request_up(
    stack: RunningStack, api_key: str, mint: Callable[..., str]
) -> None:
    posted = post_request(stack, api_key, description=f"菜市场门口积水 {uuid4().hex[:6]}")
    assert posted.status_code == 201, posted.text
    (answer,) = posted.json()
    request_id, code = answer["service_request_id"], answer["token"]
    staff = bearer(mint("yanji", "meetings"))
    title = f"雨季排水书面协商 {uuid4().hex[:4]}"
    starts = (datetime.now(CHINA) + timedelta(days=20)).replace(hour=9, minute=0, microsecond=0)
    async with (
        httpx.AsyncClient(base_url=stack.intake, timeout=10) as intake,
        httpx.AsyncClient(base_url=stack.meetings, headers=staff, timeout=10) as meetings,
    ):
        screened = await intake.post(
            f"/issues/{request_id}/screening",
            json={"decision": "topic"},
            headers=bearer(mint("yanji", "leader")),
        )
        assert screened.status_code == 200, screened.text
        planned = await meetings.post(
            "/meetings",
            json={
                "office": "yanji",
                "kind": "written",  # no venue to register
                "title": title,
                "theme": "老城区排水",
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(days=7)).isoformat(),
                "submission_deadline": (starts + timedelta(days=7)).isoformat(),
            },
        )
        assert planned.status_code == 201, planned.text
        topics = f"/meetings/{planned.json()['id']}/topics"

        async def added() -> httpx.Response | None:
            answer = await meetings.post(topics, json={"issue_id": request_id})
            return None if answer.status_code == 409 else answer  # the decision on its way

        assert (await eventually(added, "the topic on the agenda")).status_code in (200, 201)

        async def on_agenda() -> dict[str, Any] | None:
            timeline = (await intake.get(f"/track/{code}")).json()["timeline"]
            return next((s for s in timeline if s["step"] == "on_agenda"), None)

        step = await eventually(on_agenda, "the agenda in the public timeline")
        assert (step["meeting"], step["meeting_date"]) == (title, starts.date().isoformat())
        page = await intake.get(f"/track/{code}/page")
        assert title in page.text


def test_bad_open311_input_is_answered_in_the_spec_error_format_and_stores_nothing(
    stack: RunningStack, api_key: str
) -> None:
    before = httpx.get(
        f"{stack.intake}/open311/v2/requests.json", params={"jurisdiction_id": "yanji"}
    ).json()
    cases = [
        ({"api_key": "made-up"}, 403),
        ({"service_code": "天气"}, 404),
        ({"lat": "nan"}, 400),
        ({"lat": "91"}, 400),
        ({"lat": "", "long": ""}, 400),
        ({"long": ""}, 400),
        ({"phone": "call me"}, 400),
        ({"description": ""}, 400),
        ({"media_url": "not a link"}, 400),
        ({"jurisdiction_id": "tumen"}, 403),
    ]
    for change, code in cases:
        sent = post_request(stack, api_key, **change)
        assert sent.status_code == code, (change, sent.text)
        (error,) = sent.json()
        assert error["code"] == code and error["description"], change
    as_xml = post_request(stack, api_key, fmt="xml", lat="nan")
    assert as_xml.status_code == 400 and b"<errors><error><code>400</code>" in as_xml.content
    missing = httpx.get(f"{stack.intake}/open311/v2/services.json")
    assert missing.status_code == 400 and missing.json()[0]["code"] == 400
    after = httpx.get(
        f"{stack.intake}/open311/v2/requests.json", params={"jurisdiction_id": "yanji"}
    ).json()
    assert after == before


@pytest.mark.timeout(240)
def test_fuzzed_open311_fields_get_the_spec_error_format_never_5xx_and_store_nothing(
    stack: RunningStack, api_key: str
) -> None:
    submitted = post_request(stack, api_key).json()[0]
    known = {
        "api_key": [api_key],
        "jurisdiction_id": ["yanji"],
        "service_code": ["城市管理", "物业管理"],
        "service_request_id": [submitted["service_request_id"]],
        "token": [submitted["token"]],
        "fmt": ["json", "xml"],
    }
    target = Target(
        "intake", stack.intake, stack.data_dir / "intake.sqlite", "stored_events", ["-", "-"], known
    )
    report = fuzz(target, 600, 2026, under="/open311/v2")
    print(f"open311: {report.summary()}")
    assert report.cases >= 600
    assert not report.failures, "\n".join(report.failures[:20])
    assert not any(code >= 500 for code in report.statuses)


def test_another_offices_code_and_a_made_up_one_answer_alike_in_the_same_time(
    stack: RunningStack, api_key: str
) -> None:
    code = post_request(stack, api_key).json()[0]["token"]
    other = f"{stack.intake}/track/{code}?office=tumen"
    made_up = f"{stack.intake}/track/{secrets.token_urlsafe(16)}?office=tumen"
    times: dict[str, list[float]] = {other: [], made_up: []}
    bodies = set()
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{stack.intake}/track/{code}?office=yanji").status_code == 200
        for _ in range(80):
            for url in (other, made_up):  # interleaved: the machine's load falls on both
                started = time.perf_counter()
                answer = http.get(url)
                times[url].append(time.perf_counter() - started)
                assert answer.status_code == 404
                bodies.add(answer.content)
    assert len(bodies) == 1
    ratio = statistics.median(times[other]) / statistics.median(times[made_up])
    assert 0.67 < ratio < 1.5, ratio


def test_the_public_status_page_reads_in_chromium_without_personal_data(
    stack: RunningStack, api_key: str
) -> None:
    code = post_request(stack, api_key, description="进学街井盖缺失").json()[0]["token"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            answer = page.goto(f"{stack.intake}/track/{code}/page")
            assert answer is not None and answer.status == 200
            assert page.locator("h1").inner_text().startswith("办理进度")
            steps = page.locator("ol li").all_inner_texts()
            assert len(steps) == 1 and "已收到" in steps[0]
            assert "13800000000" not in page.content() and "王" not in page.content()
            missing = page.goto(f"{stack.intake}/track/{code}/page?office=tumen")
            assert missing is not None and missing.status == 404
        finally:
            browser.close()


def test_a_revoked_key_opens_nothing(stack: RunningStack) -> None:
    key = issue_key(stack)
    assert post_request(stack, key).status_code == 201

    open311_cli(stack, "revoke", "--key", key)

    refused = post_request(stack, key)
    assert refused.status_code == 403 and refused.json()[0]["code"] == 403
