"""A Thursday of the pilot over HTTP (委员活动日): an outreach activity, the issues it
brought (typed in and imported from a spreadsheet), the leaders' screening, closing and
reopening, against `shangliang up`."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from services.intake.imports import ISSUE_COLUMNS
from tests.support.http import bearer
from tests.support.stack import RunningStack

HELD_AT = "2020-06-04T14:30:00+08:00"


class Office:
    """One office's users talking to intake."""

    def __init__(self, stack: RunningStack, mint: Callable[..., str], office: str) -> None:
        self.url = stack.intake
        self.office = office
        self.clerk = bearer(mint(office, "clerk"))
        self.leader = bearer(mint(office, "leader"))
        self.viewer = bearer(mint(office, "viewer"))

    def post(
        self, path: str, body: dict[str, Any], who: dict[str, str], key: str | None = None
    ) -> httpx.Response:
        headers = dict(who) if key is None else {**who, "Idempotency-Key": key}
        return httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=10)

    def get(self, path: str, who: dict[str, str], **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, headers=who, timeout=10)

    def screen(self, issue_id: str, decision: str, **fields: Any) -> httpx.Response:
        body = {"decision": decision, "screened_at": "2020-06-11T15:00:00+08:00", **fields}
        return self.post(f"/issues/{issue_id}/screening", body, self.leader)


@pytest.fixture(scope="module")
def yanji(stack: RunningStack, mint: Callable[..., str]) -> Office:
    return Office(stack, mint, "yanji")


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def issues_csv(activity_id: str, marker: str) -> bytes:
    """Three issues as an office writes them in Excel on a Chinese Windows: CSV in GBK."""
    header = [c.header for c in ISSUE_COLUMNS]
    rows = [
        [f"{marker}-1", "2020-06-04 15:00", "楼道灯损坏", "无物业小区楼道灯长期不亮", "物业管理",
         "进学社区", "", "委员进基层", activity_id, "张三", "否", "王女士", "13800000001"],
        [f"{marker}-2", "2020-06-04 15:10", "垃圾清运不及时", "生活垃圾堆放多日", "城市管理",
         "进学社区", "", "委员进基层", activity_id, "李四", "是", "", ""],
        [f"{marker}-3", "2020-06-04 15:20", "路口拥堵", "上下学时段车辆乱停", "校园周边",
         "进学社区", "", "委员进基层", activity_id, "王五", "否", "", ""],
        [f"{marker}-4", "2020-06-04", "", "没有标题的一行", "天气",
         "", "", "广播", "", "", "也许", "", ""],
    ]  # fmt: skip
    text = io.StringIO()
    csv.writer(text).writerows([header, *rows])
    return text.getvalue().encode("gbk")


def test_an_outreach_day_from_activity_to_screening(yanji: Office, stack: RunningStack) -> None:
    marker = uuid.uuid4().hex[:8]

    # The clerk records the afternoon's activity, then corrects the members present.
    body = {
        "office": "yanji",
        "held_at": HELD_AT,
        "community": "进学社区",
        "activity_group": "第三活动小组",
        "members": ["张三", "李四", "王五"],
        "note": "走访无物业小区",
    }
    activity = ok(yanji.post("/activities", body, yanji.clerk, key=f"act-{marker}"), 201)
    retried = ok(yanji.post("/activities", body, yanji.clerk, key=f"act-{marker}"), 200)
    assert retried["id"] == activity["id"] and activity["participations"] == 3
    correction = {"members": ["张三", "李四", "王五", "赵六"], "reason": "漏记一位委员"}
    corrected = ok(yanji.post(f"/activities/{activity['id']}/corrections", correction, yanji.clerk))
    assert corrected["participations"] == 4
    detail = ok(yanji.get(f"/activities/{activity['id']}", yanji.viewer))
    assert [step["event"] for step in detail["history"]] == ["Recorded", "Corrected"]
    assert detail["history"][1]["reason"] == "漏记一位委员"

    # Three issues come from the office's spreadsheet; a fourth row is wrong in four places.
    template = httpx.get(
        f"{stack.intake}/imports/issues/template.xlsx", headers=yanji.viewer, timeout=10
    )
    assert template.status_code == 200
    headers = [c.value for c in load_workbook(io.BytesIO(template.content)).worksheets[0][1]]
    assert headers == [c.header for c in ISSUE_COLUMNS]
    upload = {"file": ("问题.csv", issues_csv(activity["id"], marker), "text/csv")}
    imported = httpx.post(
        f"{stack.intake}/imports/issues", files=upload, headers=yanji.clerk, timeout=30
    )
    answer = ok(imported)
    assert (answer["stored"], answer["unchanged"]) == (3, 0)
    assert [(e["row"], e["column"]) for e in answer["errors"]] == [(5, "标题")]
    again = ok(
        httpx.post(f"{stack.intake}/imports/issues", files=upload, headers=yanji.clerk, timeout=30)
    )
    assert (again["stored"], again["unchanged"]) == (0, 3)

    # One more is typed in, with the resident's phone number.
    typed = {
        "office": "yanji",
        "title": "小区路灯损坏",
        "description": f"进学社区路灯夜间不亮 {marker}",
        "category": "城市管理",
        "submitted_at": "2020-06-04T15:30:00+08:00",
        "community": "进学社区",
        "source": "outreach",
        "activity_id": activity["id"],
        "recorded_by": "赵六",
        "key_problem": True,
        "reporter_name": "李先生",
        "reporter_phone": "13800000004",
    }
    lamp = ok(yanji.post("/issues", typed, yanji.clerk, key=f"lamp-{marker}"), 201)
    assert lamp["reporter_phone"] == "13800000004"
    assert lamp["activity_id"] == activity["id"]

    listed = ok(
        yanji.get(
            "/issues", yanji.viewer, community="进学社区", date_from="2020-06-04",
            date_to="2020-06-04", page_size=200,
        )
    )  # fmt: skip
    ours = [i for i in listed["items"] if marker in i["description"] or i["activity_id"]]
    day = {i["title"]: i for i in ours if i["activity_id"] == activity["id"]}
    assert set(day) == {"楼道灯损坏", "垃圾清运不及时", "路口拥堵", "小区路灯损坏"}
    assert all(i["reporter_phone"] is None for i in listed["items"]), "a viewer sees no reporter"
    assert ok(yanji.get("/categories", yanji.viewer))["categories"][0] == "城市管理"

    # The leading group screens them: one decision each.
    stairs, rubbish, crossing = (day[t]["id"] for t in ("楼道灯损坏", "垃圾清运不及时", "路口拥堵"))
    assert ok(yanji.screen(lamp["id"], "answered", answer="社区当场联系维修"))["status"] == (
        "resolved"
    )
    referred = ok(yanji.screen(rubbish, "refer", department="市城管局", deadline="2020-07-10"))
    assert (referred["status"], referred["screening"]["department"]) == ("referred", "市城管局")
    assert ok(yanji.screen(crossing, "topic"))["status"] == "topic"
    assert ok(yanji.screen(stairs, "duplicate", duplicate_of=crossing))["status"] == "duplicate"

    twice = yanji.screen(crossing, "rejected", reason="改变主意")
    assert twice.status_code == 409, twice.text
    assert twice.json()["status"] == "topic" and " / " in twice.json()["message"]
    past = yanji.screen(lamp["id"], "refer", department="x", deadline=str(date(2020, 6, 1)))
    assert past.status_code == 409  # already screened: the state is checked before the fields
    another = {**typed, "description": f"另一个 {marker}"}
    unscreened = ok(yanji.post("/issues", another, yanji.clerk), 201)
    late = yanji.screen(unscreened["id"], "refer", department="市城管局", deadline="2020-06-01")
    assert late.status_code == 422, late.text
    assert any("deadline" in e["loc"] for e in late.json()["detail"])
    own = yanji.screen(unscreened["id"], "duplicate", duplicate_of=unscreened["id"])
    assert own.status_code == 422, own.text

    # A clerk may not screen; an unresolved issue is not closed; a resolved one is, and reopens.
    by_clerk = yanji.post(f"/issues/{crossing}/screening", {"decision": "topic"}, yanji.clerk)
    assert by_clerk.status_code == 403
    assert yanji.post(f"/issues/{crossing}/close", {}, yanji.leader).status_code == 409
    closed = ok(yanji.post(f"/issues/{lamp['id']}/close", {}, yanji.leader, key=f"c-{marker}"))
    assert closed["status"] == "closed"
    assert (
        ok(yanji.post(f"/issues/{lamp['id']}/close", {}, yanji.leader, key=f"c-{marker}"))["status"]
        == "closed"
    )
    reopened = ok(
        yanji.post(f"/issues/{lamp['id']}/reopen", {"reason": "居民反映又坏了"}, yanji.leader)
    )
    assert reopened["status"] == "submitted"
    history = ok(yanji.get(f"/issues/{lamp['id']}", yanji.clerk))["history"]
    assert [s["event"] for s in history] == [
        "Submitted", "Screened", "Resolved", "Closed", "Reopened",
    ]  # fmt: skip
    assert all("reporter_phone" not in s for s in history)

    topics = ok(yanji.get("/issues", yanji.viewer, status="topic", key_problem="false"))
    assert crossing in {i["id"] for i in topics["items"]}


def test_the_reporter_is_shown_only_to_the_offices_clerk_and_leader(
    yanji: Office, stack: RunningStack, mint: Callable[..., str]
) -> None:
    body = {
        "office": "yanji",
        "title": "噪声扰民",
        "description": "夜间烧烤噪声",
        "category": "城市管理",
        "submitted_at": "2020-08-13T15:00:00+08:00",
        "reporter_name": "张女士",
        "reporter_phone": "13800000005",
    }
    issue = ok(yanji.post("/issues", body, yanji.clerk), 201)
    path = f"/issues/{issue['id']}"

    assert ok(yanji.get(path, yanji.leader))["reporter_phone"] == "13800000005"
    assert ok(yanji.get(path, yanji.clerk))["reporter_name"] == "张女士"
    assert ok(yanji.get(path, yanji.viewer))["reporter_phone"] is None
    prefecture = bearer(mint("yanbian", "viewer", "leader", "clerk"))
    assert ok(yanji.get(path, prefecture))["reporter_phone"] is None
    assert yanji.get(path, bearer(mint("tumen", "clerk"))).status_code == 404
    tumen_list = yanji.get("/issues", bearer(mint("tumen", "viewer")), office="yanji")
    assert tumen_list.status_code == 404


def test_imports_refuse_a_file_that_is_not_a_spreadsheet_and_another_offices_rows(
    yanji: Office, stack: RunningStack, mint: Callable[..., str]
) -> None:
    upload = {"file": ("notes.pdf", b"%PDF-1.4", "application/pdf")}
    refused = httpx.post(
        f"{stack.intake}/imports/activities", files=upload, headers=yanji.clerk, timeout=10
    )
    assert refused.status_code == 422, refused.text
    assert ".xlsx" in refused.json()["message"]
    other = httpx.post(
        f"{stack.intake}/imports/activities",
        params={"office": "tumen"},
        files={"file": ("a.csv", "编号,活动日期,参加委员\n".encode(), "text/csv")},
        headers=yanji.clerk,
        timeout=10,
    )
    assert other.status_code == 403


def fields_of(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {str(part) for error in response.json()["detail"] for part in error["loc"]}


def test_bad_activity_writes_are_refused_naming_the_field_and_retries_store_nothing(
    yanji: Office, mint: Callable[..., str]
) -> None:
    nowhere = {"office": "yanji", "held_at": HELD_AT, "members": ["张三"]}
    assert fields_of(yanji.post("/activities", nowhere, yanji.clerk)) == {"body", "community"}
    body = {**nowhere, "liaison_station": "建工街道联络站"}
    activity = ok(yanji.post("/activities", body, yanji.clerk), 201)
    path = f"/activities/{activity['id']}/corrections"

    same = {"members": ["张三"], "reason": "核对"}
    assert "members" in fields_of(yanji.post(path, same, yanji.clerk))
    tumen = bearer(mint("tumen", "clerk"))
    assert yanji.post(path, {"members": ["李四"], "reason": "x"}, tumen).status_code == 404
    change = {"members": ["张三", "李四"], "reason": "漏记"}
    first = ok(yanji.post(path, change, yanji.clerk, key="fix-1"))
    retry = ok(yanji.post(path, change, yanji.clerk, key="fix-1"))
    assert retry == first and first["version"] == 2
    other = yanji.post(path, {**change, "reason": "另一个原因"}, yanji.clerk, key="fix-1")
    assert other.status_code == 409, other.text

    tumen_activity = ok(
        yanji.post(
            "/activities",
            {**body, "office": "tumen"},
            bearer(mint("tumen", "clerk")),
        ),
        201,
    )
    issue = {
        "office": "yanji",
        "title": "路灯",
        "description": "不亮",
        "category": "城市管理",
        "submitted_at": HELD_AT,
        "activity_id": tumen_activity["id"],
    }
    assert "activity_id" in fields_of(yanji.post("/issues", issue, yanji.clerk))


@pytest.mark.parametrize(
    "params",
    [{"page_size": 500}, {"page": 0}, {"status": "lost"}, {"date_from": "June"}],
    ids=["a page too large", "page 0", "an unknown status", "a date that is no date"],
)
def test_a_bad_list_query_gets_422(yanji: Office, params: dict[str, Any]) -> None:
    response = yanji.get("/issues", yanji.viewer, **params)
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith("请求数据无效 / invalid request")
