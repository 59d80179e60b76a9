"""Exports (导出) for Excel: CSV in UTF-8 with a BOM, or .xlsx, with Chinese column headers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any, Literal
from urllib.parse import quote

from fastapi import Response
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter

from shared.offices import office_name
from shared.text import display_width

ExportFormat = Literal["json", "csv", "xlsx"]

Columns = Sequence[tuple[str, str]]
"""(key in the row, Chinese header)."""

ISSUE_COLUMNS: Columns = (
    ("issue_id", "问题编号"),
    ("office", "政协"),
    ("title", "标题"),
    ("category", "类别"),
    ("community", "社区"),
    ("status_label", "状态"),
    ("key_problem", "重点难点问题"),
    ("departments", "承办单位"),
    ("submitted_at", "收集时间"),
    ("updated_at", "最近更新"),
)
FIGURE_COLUMNS: Columns = (
    ("office", "政协"),
    ("outreach_activities", "委员进基层活动（期）"),
    ("member_participations", "委员参与（人次）"),
    ("issues_collected", "收集问题和建议"),
    ("issues_resolved", "解决问题"),
    ("meetings_held.thematic", "专题协商会"),
    ("meetings_held.onsite", "现场协商会"),
    ("meetings_held.written", "书面协商"),
    ("key_problems_resolved", "解决重点难点问题"),
    ("reports_forwarded", "报送社情民意"),
    ("letters_issued", "发出督办函"),
    ("cases_overdue", "逾期督办件"),
    ("cases_reopened_by_callback", "回访不满意退回督办件"),
    ("median_days_to_resolution", "办结天数中位数"),
    ("issues_called_back", "已回访"),
    ("callbacks_reached", "回访联系上"),
    ("callbacks_satisfied", "满意（含基本满意）"),
    ("satisfaction_rate", "满意率"),
    ("callback_coverage", "回访率"),
)
DRILL_COLUMNS: dict[str, Columns] = {
    "issue": (
        ("issue_id", "问题编号"),
        ("office", "政协"),
        ("title", "标题"),
        ("category", "类别"),
        ("status_label", "状态"),
        ("key_problem", "重点难点问题"),
        ("submitted_at", "收集时间"),
        ("at", "计入时间"),
        ("days_to_resolution", "办结天数"),
        ("event_ids", "事件编号"),
    ),
    "activity": (
        ("activity_id", "活动编号"),
        ("office", "政协"),
        ("held_at", "活动时间"),
        ("community", "社区"),
        ("liaison_station", "联络站"),
        ("activity_group", "活动小组"),
        ("members", "参与委员（人次）"),
        ("event_ids", "事件编号"),
    ),
    "meeting": (
        ("meeting_id", "会议编号"),
        ("offices", "政协"),
        ("kind", "会议形式"),
        ("title", "会议名称"),
        ("at", "召开时间"),
        ("event_ids", "事件编号"),
    ),
    "case": (
        ("case_id", "督办件编号"),
        ("office", "政协"),
        ("number", "督办函文号"),
        ("department", "承办单位"),
        ("at", "时间"),
        ("issue_ids", "问题编号"),
        ("event_ids", "事件编号"),
    ),
}
DRILL_KIND = {
    "outreach_activities": "activity",
    "member_participations": "activity",
    "meetings_held": "meeting",
    "letters_issued": "case",
    "cases_overdue": "case",
    "cases_reopened_by_callback": "case",
}


OFFICE_KEYS = {"office", "offices"}
"""Columns that hold office codes: exported by the names the dashboard shows (延边州政协)."""


def _cell(row: dict[str, Any], key: str) -> Any:
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if key in OFFICE_KEYS and value is not None:
        codes = value if isinstance(value, list) else str(value).split(",")
        value = [office_name(code) for code in codes]
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return value


def _xlsx_safe(value: Any) -> Any:
    """A cell without the control characters .xlsx cannot hold (a typed-in title may have
    them): dropped rather than the whole export refused."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def _widths(header: list[str], table: list[list[Any]]) -> list[float]:
    """Each column as wide as its header or its widest cell, within 8 and 60 characters,
    so that printed headers are not cut (a sheet without widths prints 8 of each)."""
    widths = []
    for n, title in enumerate(header):
        cells = (display_width("" if line[n] is None else str(line[n])) for line in table)
        widest = max([display_width(title), *cells])
        widths.append(float(min(60, max(8, widest + 2))))
    return widths


def export(rows: Iterable[dict[str, Any]], columns: Columns, name: str, fmt: str) -> Response:
    """The rows as a download; `name` without extension (ASCII or Chinese)."""
    header = [title for _, title in columns]
    table = [[_cell(row, key) for key, _ in columns] for row in rows]
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(table)
        # The BOM tells Excel the file is UTF-8; without it Chinese opens garbled.
        body = ("\ufeff" + text.getvalue()).encode("utf-8")
        media = "text/csv; charset=utf-8"
    else:
        book = Workbook(write_only=True)
        sheet = book.create_sheet(name[:31])
        for n, width in enumerate(_widths(header, table), start=1):
            sheet.column_dimensions[get_column_letter(n)].width = width
        sheet.append(header)
        for line in table:
            sheet.append([_xlsx_safe(value) for value in line])
        buffer = io.BytesIO()
        book.save(buffer)
        body = buffer.getvalue()
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    filename = quote(f"{name}.{fmt}")
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )
