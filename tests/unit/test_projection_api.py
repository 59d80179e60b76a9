"""The read side's HTTP API on a loaded view: access, filters, as-of, drill-down, exports."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from eventsourcing.persistence import Tracking
from openpyxl import load_workbook

from services.projections import api as projections_api
from services.projections.exports import ISSUE_COLUMNS, export
from services.projections.main import create_app
from shared.auth import Authenticator
from shared.settings import Settings
from shared.web import MAX_PAGE
from tests.support.history import batches, history


@pytest.fixture
async def api(
    store_settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Any, Authenticator]]:
    """The app on a view loaded with a generated history (no consumers: nothing else moves),
    in a SQLite file, then in a PostgreSQL schema."""
    settings = store_settings
    app = create_app(settings)
    for stream, messages in history(120, seed=9).items():
        for part in batches(messages, 50):
            app.state.view.apply(part, Tracking(stream, part[-1].position))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://projections"
    ) as client:
        yield client, app, Authenticator(settings)
    app.state.view.datastore.close()


def as_(authenticator: Authenticator, office: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {authenticator.mint(office, ['viewer'])}"}


async def test_a_county_lists_only_its_own_issues_and_gets_404_for_another_office(
    api: tuple[httpx.AsyncClient, Any, Authenticator],
) -> None:
    client, _, auth = api
    own = await client.get("/issues", params={"page_size": 200}, headers=as_(auth, "yanji"))
    assert own.status_code == 200, own.text
    assert own.json()["total"] == 30
    assert {item["office"] for item in own.json()["items"]} == {"yanji"}

    other = await client.get("/issues", params={"office": "tumen"}, headers=as_(auth, "yanji"))
    assert other.status_code == 404
    unknown = await client.get("/issues", params={"office": "mars"}, headers=as_(auth, "yanbian"))
    assert unknown.status_code == 422 and "office" in unknown.json()["message"]
    tumen_issue = next(
        item["issue_id"]
        for item in (await client.get("/issues", headers=as_(auth, "tumen"))).json()["items"]
    )
    hidden = await client.get(f"/issues/{tumen_issue}", headers=as_(auth, "yanji"))
    assert hidden.status_code == 404


async def test_issues_filter_by_status_department_and_key_problem(
    api: tuple[httpx.AsyncClient, Any, Authenticator],
) -> None:
    client, _, auth = api
    prefecture = as_(auth, "yanbian")
    everything = (await client.get("/issues", params={"page_size": 200}, headers=prefecture)).json()
    assert everything["total"] == 120
    for params, check in (
        ({"status": "resolved"}, lambda i: i["status"] == "resolved"),
        ({"department": "住建局"}, lambda i: "住建局" in i["departments"]),
        ({"key_problem": "true"}, lambda i: i["key_problem"]),
    ):
        found = (
            await client.get("/issues", params={**params, "page_size": 200}, headers=prefecture)
        ).json()
        expected = [i for i in everything["items"] if check(i)]
        assert 0 < found["total"] == len(expected) < 120, params
    second = await client.get("/issues", params={"page": 2, "page_size": 50}, headers=prefecture)
    assert [i["issue_id"] for i in second.json()["items"]] == [
        i["issue_id"] for i in everything["items"][50:100]
    ]
    bad = await client.get("/issues", params={"status": "happy"}, headers=prefecture)
    assert bad.status_code == 422


async def test_an_issue_as_of_a_day_shows_the_timeline_up_to_that_day(
    api: tuple[httpx.AsyncClient, Any, Authenticator],
) -> None:
    client, _, auth = api
    prefecture = as_(auth, "yanbian")
    closed = (await client.get("/issues", params={"status": "closed"}, headers=prefecture)).json()[
        "items"
    ][0]
    now = (await client.get(f"/issues/{closed['issue_id']}", headers=prefecture)).json()
    day = now["submitted_at"][:10]
    then = (
        await client.get(f"/issues/{closed['issue_id']}", params={"as_of": day}, headers=prefecture)
    ).json()
    assert now["status"] == "closed" and then["as_of"] == day
    assert then["status"] != "closed"
    assert len(then["timeline"]) < len(now["timeline"])
    assert all(step["at"][:10] <= day for step in then["timeline"])


async def test_a_cached_statistics_answer_is_replaced_once_a_new_batch_is_applied(
    api: tuple[httpx.AsyncClient, Any, Authenticator],
) -> None:
    client, app, auth = api
    prefecture = as_(auth, "yanbian")
    first = (await client.get("/statistics/2021", headers=prefecture)).json()
    again = (await client.get("/statistics/2021", headers=prefecture)).json()
    assert first == again
    more = history(10, seed=99)["INTAKE"]  # issues of other ids, INTAKE positions after ours
    position = app.state.view.max_tracking_id("INTAKE")
    moved = [type(m)(m.position + position, m.envelope, m.contract) for m in more]
    app.state.view.apply(moved, Tracking("INTAKE", moved[-1].position))
    later = (await client.get("/statistics/2021", headers=prefecture)).json()
    assert (
        later["total"]["issues_collected"]
        + (await client.get("/statistics/2020", headers=prefecture)).json()["total"][
            "issues_collected"
        ]
        == 130
    )
    assert later != first


async def test_drill_down_and_list_exports_carry_chinese_headers(
    api: tuple[httpx.AsyncClient, Any, Authenticator],
) -> None:
    client, _, auth = api
    county = as_(auth, "yanji")
    listed = await client.get("/issues", params={"format": "xlsx"}, headers=county)
    sheet = load_workbook(io.BytesIO(listed.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("问题编号", "政协", "标题") and len(rows) == 31
    letters = await client.get(
        "/statistics/2021/letters_issued", params={"format": "csv"}, headers=county
    )
    assert letters.content.decode("utf-8-sig").startswith("督办件编号,政协,督办函文号")
    meetings = (
        await client.get(
            "/statistics/2021/meetings_held", params={"kind": "onsite"}, headers=county
        )
    ).json()
    assert all(item["kind"] == "onsite" for item in meetings["items"])
    wrong_kind = await client.get(
        "/statistics/2021/meetings_held", params={"kind": "picnic"}, headers=county
    )
    assert wrong_kind.status_code == 422


async def test_a_repeated_plain_question_is_answered_from_the_cache_exactly_as_the_api_would(
    api: tuple[httpx.AsyncClient, Any, Authenticator], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, auth = api
    routed: list[str | None] = []
    through_the_api = projections_api.readable_offices

    def noting(request: Any, principal: Any, office: str | None) -> Any:
        routed.append(principal.office)
        return through_the_api(request, principal, office)

    monkeypatch.setattr(projections_api, "readable_offices", noting)
    for office in ("yanbian", "yanji"):
        first = await client.get("/statistics/2020", headers=as_(auth, office))
        again = await client.get("/statistics/2020", headers=as_(auth, office))
        assert again.status_code == 200 and again.content == first.content
        assert again.headers["content-type"] == "application/json"
        assert again.headers["x-request-id"]
    assert routed == ["yanbian", "yanji"]  # each second asking never reached the route
    county = (await client.get("/statistics/2020", headers=as_(auth, "yanji"))).json()
    assert [o["office"] for o in county["offices"]] == ["yanji"]
    # Anything else goes through the API: a bad token is still a 401, a query still validated.
    bad = await client.get("/statistics/2020", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401
    unknown = await client.get("/statistics/2020?office=nowhere", headers=as_(auth, "yanbian"))
    assert unknown.status_code == 422


async def test_every_bucket_of_the_breakdown_links_to_the_issues_it_counts(
    api: tuple[httpx.AsyncClient, Any, Authenticator],
) -> None:
    client, _, auth = api
    prefecture = as_(auth, "yanbian")
    for year in (2020, 2021):
        answer = await client.get(f"/statistics/{year}/breakdown", headers=prefecture)
        assert answer.status_code == 200, answer.text
        counted = answer.json()
        collected = (await client.get(f"/statistics/{year}", headers=prefecture)).json()
        assert sum(counted["by_month"].values()) == collected["total"]["issues_collected"]
        assert sum(counted["by_status"].values()) == collected["total"]["issues_collected"]
        for name in projections_api.BREAKDOWN_FILTERS:
            assert counted["links"][name].keys() == counted[name].keys(), name
            for key, n in counted[name].items():
                link = counted["links"][name][key] + "&page_size=200"
                listed = await client.get(link, headers=prefecture)
                assert listed.json()["total"] == n, (name, key)
    overdue = counted["overdue_by_department"]
    assert overdue and counted["by_community"], "the history has overdue issues and communities"
    bad = await client.get("/issues", params={"month": 13}, headers=prefecture)
    assert bad.status_code == 422 and "month" in bad.json()["message"]


async def test_the_breakdown_as_of_a_day_counts_each_issue_as_it_stood_then(
    api: tuple[httpx.AsyncClient, Any, Authenticator],
) -> None:
    client, _, auth = api
    prefecture = as_(auth, "yanbian")
    day = "2021-01-10"
    then = (
        await client.get("/statistics/2021/breakdown", params={"as_of": day}, headers=prefecture)
    ).json()
    now = (await client.get("/statistics/2021/breakdown", headers=prefecture)).json()
    listed = await client.get(
        "/issues", params={"year": 2021, "page_size": 200}, headers=prefecture
    )
    statuses: dict[str, int] = {}
    for item in listed.json()["items"]:
        if item["submitted_at"][:10] <= day:
            one = await client.get(
                f"/issues/{item['issue_id']}", params={"as_of": day}, headers=prefecture
            )
            status = one.json()["status"]
            statuses[status] = statuses.get(status, 0) + 1
    assert then["as_of"] == day and then["by_status"] == statuses
    assert then["by_status"] != now["by_status"]
    county = await client.get("/statistics/2021/breakdown", headers=as_(auth, "yanji"))
    own = await client.get("/issues", params={"year": 2021}, headers=as_(auth, "yanji"))
    assert sum(county.json()["by_status"].values()) == own.json()["total"]
    other = await client.get(
        "/statistics/2021/breakdown", params={"office": "tumen"}, headers=as_(auth, "yanji")
    )
    assert other.status_code == 404


async def test_a_page_past_any_offset_sql_can_hold_is_a_422_naming_page(
    api: tuple[httpx.AsyncClient, Any, Authenticator],
) -> None:
    """Found by the fuzzer (tests/e2e/test_fuzz.py): page 10^33 made SQLite's OFFSET overflow."""
    client, _, auth = api
    for path in ("/issues", "/statistics/2020/issues_collected"):
        answer = await client.get(path, params={"page": 10**33}, headers=as_(auth, "yanji"))
        assert answer.status_code == 422, answer.text
        assert "page" in answer.json()["message"]
    last = await client.get("/issues", params={"page": MAX_PAGE}, headers=as_(auth, "yanji"))
    assert last.status_code == 200 and last.json()["items"] == []


def test_an_xlsx_export_drops_the_control_characters_a_typed_in_title_may_hold() -> None:
    """Found by the fuzzer: intake accepts such a title; openpyxl refused it, a 500."""
    row = {"issue_id": "1", "office": "yanji", "title": "路灯\x01损坏\x0b", "key_problem": True}
    answer = export([row], ISSUE_COLUMNS, "问题状态 issues", "xlsx")
    sheet = load_workbook(io.BytesIO(answer.body)).active
    assert sheet is not None
    assert list(sheet.iter_rows(values_only=True))[1][:3] == ("1", "延吉市政协", "路灯损坏")
