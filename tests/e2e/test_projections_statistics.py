"""An office reads its yearly statistics over HTTP, drills into a figure and exports it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import httpx
import psycopg
from openpyxl import load_workbook

from services.projections.rebuild import DEFAULT_FILE
from tests.conftest import POSTGRES
from tests.support.http import bearer, issue_body
from tests.support.stack import RunningStack

YEAR = 2011  # a year of this module's own


def submit(stack: RunningStack, token: str, office: str, month: int) -> str:
    body = issue_body(office=office, year=YEAR)
    body["submitted_at"] = f"{YEAR}-{month:02d}-04T15:30:00+08:00"
    response = httpx.post(f"{stack.intake}/issues", json=body, headers=bearer(token), timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_statistics_drill_down_and_exports_over_http(
    stack: RunningStack, mint: Callable[..., str]
) -> None:
    yanji = [submit(stack, mint("yanji", "clerk"), "yanji", m) for m in (1, 2, 3)]
    tumen = [submit(stack, mint("tumen", "clerk"), "tumen", 5)]
    prefecture = bearer(mint("yanbian", "viewer"))
    last = httpx.get(
        f"{stack.projections}/issues/{tumen[-1]}", params={"wait": 5}, headers=prefecture
    )
    assert last.status_code == 200, last.text
    httpx.get(f"{stack.projections}/issues/{yanji[-1]}", params={"wait": 5}, headers=prefecture)

    everyone = httpx.get(f"{stack.projections}/statistics/{YEAR}", headers=prefecture).json()
    collected = {row["office"]: row["issues_collected"] for row in everyone["offices"]}
    assert (collected["yanji"], collected["tumen"], everyone["total"]["issues_collected"]) == (
        3,
        1,
        4,
    )
    assert set(everyone["total"]) >= {"meetings_held", "median_days_to_resolution"}

    county = bearer(mint("yanji", "viewer"))
    own = httpx.get(f"{stack.projections}/statistics/{YEAR}", headers=county).json()
    assert [row["office"] for row in own["offices"]] == ["yanji"]
    assert own["total"]["issues_collected"] == 3
    other = httpx.get(
        f"{stack.projections}/statistics/{YEAR}", params={"office": "tumen"}, headers=county
    )
    assert other.status_code == 404, other.text

    as_of = httpx.get(
        f"{stack.projections}/statistics/{YEAR}",
        params={"as_of": f"{YEAR}-02-28"},
        headers=county,
    ).json()
    assert as_of["total"]["issues_collected"] == 2

    drill = httpx.get(
        f"{stack.projections}/statistics/{YEAR}/issues_collected", headers=county
    ).json()
    assert sorted(item["issue_id"] for item in drill["items"]) == sorted(yanji)
    assert all(item["event_ids"] and item["href"] for item in drill["items"])

    listed = httpx.get(
        f"{stack.projections}/issues", params={"year": YEAR, "office": "yanji"}, headers=prefecture
    ).json()
    assert listed["total"] == 3 and {i["status"] for i in listed["items"]} == {"submitted"}

    exported = httpx.get(
        f"{stack.projections}/statistics/{YEAR}", params={"format": "csv"}, headers=prefecture
    )
    assert exported.status_code == 200
    assert exported.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["政协", "委员进基层活动（期）", "委员参与（人次）", "收集问题和建议"]
    assert rows[-1][0] == "合计 total" and rows[-1][3] == "4"

    workbook = httpx.get(
        f"{stack.projections}/statistics/{YEAR}/issues_collected",
        params={"format": "xlsx"},
        headers=county,
    )
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][:2] == ("问题编号", "政协") and len(table) == 4

    unknown = httpx.get(f"{stack.projections}/statistics/{YEAR}/happiness", headers=county)
    assert unknown.status_code == 422, unknown.text


def test_the_read_model_is_where_the_event_stores_are(
    stack: RunningStack, mint: Callable[..., str], event_store: dict[str, str]
) -> None:
    issue_id = submit(stack, mint("hunchun", "clerk"), "hunchun", 7)
    shown = httpx.get(
        f"{stack.projections}/issues/{issue_id}",
        params={"wait": 5},
        headers=bearer(mint("yanbian", "viewer")),
    )
    assert shown.status_code == 200, shown.text

    if not event_store:
        assert (stack.data_dir / DEFAULT_FILE).exists()
        return
    # PostgreSQL by the same setting: the row is in the schema, and no view file was made.
    schema = event_store["SHANGLIANG_POSTGRES_SCHEMA"]
    with psycopg.connect(**POSTGRES) as connection:
        row = connection.execute(
            f"SELECT office, status FROM {schema}.issue_status WHERE issue_id = %s", (issue_id,)
        ).fetchone()
        tracked = connection.execute(
            f"SELECT notification_id FROM {schema}.tracking WHERE application_name = 'INTAKE'"
        ).fetchone()
    assert row == ("hunchun", "submitted")
    assert tracked is not None and tracked[0] >= 1
    assert not (stack.data_dir / DEFAULT_FILE).exists()
