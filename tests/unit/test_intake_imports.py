"""Spreadsheet import (表格导入): every row checked, good rows stored once, bad rows named."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from services.intake.application import IntakeApplication
from services.intake.domain import activity_id_for, imported_key, issue_id_for
from services.intake.imports import ISSUE_COLUMNS, ImportRefused, Kind, template
from shared.clock import CHINA

ACTIVITY_HEADER = ["编号", "活动日期", "社区", "联络站", "活动小组", "参加委员", "备注"]
ISSUE_HEADER = [c.header for c in ISSUE_COLUMNS]


def xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows: list[list[Any]], encoding: str) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode(encoding)


def issue_row(key: str, **changes: str) -> list[str]:
    values = {
        "编号": key,
        "反映时间": "2020-06-04 15:30",
        "标题": "小区路灯损坏",
        "内容": f"进学街道某小区路灯夜间不亮（{key}）",
        "类别": "城市管理",
        "社区": "进学社区",
        "联络站": "",
        "来源": "委员进基层",
        "活动编号": "",
        "记录委员": "张三",
        "重点难点": "否",
        "反映人": "王女士",
        "联系电话": "13800000000",
    }
    values.update(changes)
    return [values[h] for h in ISSUE_HEADER]


ACTIVITIES = [
    ACTIVITY_HEADER,
    ["HD-01", datetime(2020, 6, 4, 14, 30), "进学社区", "", "第三活动小组", "张三、李四、王五", ""],
    ["HD-02", "2020/6/11", "", "建工街道联络站", "", "张三，赵六", "走访"],
    ["", "2020年6月18日 14:00", "河南社区", "", "第五小组", "李四 钱七", ""],
]


async def test_activities_from_an_xlsx_are_stored_once(intake: IntakeApplication) -> None:
    first = await intake.import_file("activities", "yanji", xlsx(ACTIVITIES), "活动.xlsx")
    stored = intake.recorder.max_notification_id()
    again = await intake.import_file("activities", "yanji", xlsx(ACTIVITIES), "活动.xlsx")

    assert (first.stored, first.unchanged, first.errors) == (3, 0, [])
    assert (again.stored, again.unchanged, again.errors) == (0, 3, [])
    assert intake.recorder.max_notification_id() == stored == 3
    activity = intake.get_activity(activity_id_for("yanji", imported_key("HD-01")))
    assert activity.members == ["张三", "李四", "王五"]
    assert activity.held_at == datetime(2020, 6, 4, 14, 30, tzinfo=CHINA)
    second = intake.get_activity(activity_id_for("yanji", imported_key("HD-02")))
    assert (second.liaison_station, second.members) == ("建工街道联络站", ["张三", "赵六"])


async def test_issues_from_a_gbk_csv_link_their_activity_and_keep_the_reporter(
    intake: IntakeApplication,
) -> None:
    await intake.import_file("activities", "yanji", xlsx(ACTIVITIES), "a.xlsx")
    rows = [
        ISSUE_HEADER,
        issue_row("2020-001", 活动编号="HD-01", 重点难点="是"),
        issue_row("2020-002", 来源="热线", 反映人="", 联系电话=""),
    ]

    result = await intake.import_file("issues", "yanji", csv_bytes(rows, "gbk"), "问题.csv")

    assert (result.stored, result.errors) == (2, [])
    issue = intake.get_issue(issue_id_for("yanji", imported_key("2020-001")))
    assert issue.activity_id == activity_id_for("yanji", imported_key("HD-01"))
    assert (issue.key_problem, issue.source, issue.reporter_phone) == (
        True,
        "outreach",
        "13800000000",
    )
    assert intake.get_issue(issue_id_for("yanji", imported_key("2020-002"))).source == "hotline"


async def test_a_utf8_csv_with_a_byte_order_mark_and_the_alias_header_is_read(
    intake: IntakeApplication,
) -> None:
    rows = [["序号", *ISSUE_HEADER[1:]], issue_row("7")]
    result = await intake.import_file("issues", "yanji", csv_bytes(rows, "utf-8-sig"), "x.csv")
    assert result.stored == 1


async def test_bad_rows_are_named_by_row_and_column_and_good_rows_are_stored(
    intake: IntakeApplication,
) -> None:
    rows = [
        ISSUE_HEADER,
        issue_row("ok-1"),
        issue_row("bad-title", 标题=""),
        issue_row("bad-category", 类别="天气"),
        issue_row("bad-date", 反映时间="六月四日"),
        issue_row("bad-flag", 重点难点="也许"),
        issue_row("bad-activity", 活动编号="HD-99"),
        issue_row("ok-1"),
        issue_row("bad-phone", 联系电话="打电话"),
        issue_row("bad-source", 来源="广播"),
        issue_row("future", 反映时间="2999-01-01"),
        ["", "", "", "", "", "", "", "", "", "", "", "", ""],
        issue_row("ok-2"),
    ]

    result = await intake.import_file("issues", "yanji", xlsx(rows), "issues.xlsx")

    assert (result.stored, result.unchanged) == (2, 0)
    assert [(e.row, e.column) for e in result.errors] == [
        (3, "标题"),
        (4, "类别"),
        (5, "反映时间"),
        (6, "重点难点"),
        (7, "活动编号"),
        (8, "编号"),
        (9, "联系电话"),
        (10, "来源"),
        (11, "反映时间"),
    ]
    assert "row 2" in result.errors[5].reason
    assert all(" / " in e.reason for e in result.errors), "Chinese and English"
    assert intake.recorder.max_notification_id() == 2


async def test_cells_with_control_or_invisible_format_characters_are_refused_by_row_and_column(
    intake: IntakeApplication,
) -> None:
    rows = [
        ISSUE_HEADER,
        issue_row("rlo", 标题="\u202e坏损灯路"),
        issue_row("escape", 内容="路灯\x1b[31m不亮"),
        issue_row("emoji", 标题="路灯不亮 💡", 内容="第一行\n第二行"),
    ]

    result = await intake.import_file("issues", "yanji", csv_bytes(rows, "utf-8"), "i.csv")

    assert result.stored == 1
    assert [(e.row, e.column) for e in result.errors] == [(2, "标题"), (3, "内容")]
    assert "U+202E" in result.errors[0].reason and "U+001B" in result.errors[1].reason


async def test_a_reimported_key_with_other_content_is_an_error_not_a_change(
    intake: IntakeApplication,
) -> None:
    await intake.import_file("issues", "yanji", xlsx([ISSUE_HEADER, issue_row("k")]), "a.xlsx")
    changed = xlsx([ISSUE_HEADER, issue_row("k", 标题="另一个标题")])

    result = await intake.import_file("issues", "yanji", changed, "a.xlsx")

    assert (result.stored, [e.column for e in result.errors]) == (0, ["编号"])
    assert intake.get_issue(issue_id_for("yanji", imported_key("k"))).title == "小区路灯损坏"


async def test_row_numbers_start_at_the_first_row_given(intake: IntakeApplication) -> None:
    rows = [ISSUE_HEADER, issue_row("a", 类别="天气")]
    result = await intake.import_file("issues", "yanji", xlsx(rows), "c.xlsx", first_row=1002)
    assert result.errors[0].row == 1002


@pytest.mark.parametrize(
    ("data", "name", "complaint"),
    [
        (b"", "a.csv", "empty"),
        (b"\x00\x01binary", "a.pdf", ".xlsx or .csv"),
        ("标题,内容\n路灯,坏了\n".encode(), "a.csv", "missing columns"),
        (b"PK\x03\x04 broken zip", "a.xlsx", "not a readable .xlsx"),
        ("编号".encode("utf-16"), "a.csv", "UTF-8 or GBK"),
    ],
    ids=["empty", "not a spreadsheet", "missing headers", "damaged xlsx", "other encoding"],
)
async def test_a_file_that_cannot_be_read_is_refused_as_a_whole(
    intake: IntakeApplication, data: bytes, name: str, complaint: str
) -> None:
    with pytest.raises(ImportRefused, match=complaint):
        await intake.import_file("issues", "yanji", data, name)
    assert not intake.recorder.max_notification_id()


def filled_template(kind: Kind) -> bytes:
    """The template with one row: the examples its guide sheet gives."""
    workbook = load_workbook(io.BytesIO(template(kind)))
    sheet = workbook.worksheets[0]
    guide = workbook["填写说明"]
    rows = guide.iter_rows(min_row=2, max_row=sheet.max_column + 1, values_only=True)
    sheet.append([row[3] for row in rows])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def test_the_filled_in_templates_import(intake: IntakeApplication) -> None:
    activities = await intake.import_file("activities", "yanji", filled_template("activities"), "")
    issues = await intake.import_file("issues", "yanji", filled_template("issues"), "t.xlsx")

    assert (activities.stored, activities.errors) == (1, [])
    assert (issues.stored, issues.errors) == (1, [])
