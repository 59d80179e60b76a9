"""Spreadsheet import (表格导入): the activities and issues offices keep in Excel or CSV.

Each row is checked on its own; a bad row is reported with its row number, column and
reason, and the good rows are stored. A row's id comes from the office and the row's own
key (编号), so importing the same file again stores nothing new. The templates and their
columns are described in `services/intake/README.md`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.intake.activity import OutreachActivity
from services.intake.domain import (
    Issue,
    activity_id_for,
    imported_key,
    issue_id_for,
)
from services.intake.rules import IssueRuleBroken
from shared.web import request_time, text_problem

Kind = Literal["activities", "issues"]
MAX_ROWS = 50_000


@dataclass(frozen=True)
class Column:
    header: str
    """The Chinese header as the template writes it."""
    field: str
    required: bool
    explanation: str
    example: str
    aliases: tuple[str, ...] = ()


ACTIVITY_COLUMNS = (
    Column("编号", "key", False, "本单位的活动编号，重复导入时据此识别；可留空", "HD-2020-01"),
    Column("活动日期", "held_at", True, "日期或日期时间，如 2020-06-04 14:30", "2020-06-04 14:30"),
    Column("社区", "community", False, "社区和联络站至少填一项", "进学社区"),
    Column("联络站", "liaison_station", False, "政协委员联络站", "进学街道联络站"),
    Column("活动小组", "activity_group", False, "委员活动小组", "第三活动小组"),
    Column("参加委员", "members", True, "参加的委员，用顿号、逗号或空格分隔", "张三、李四"),
    Column("备注", "note", False, "", "走访无物业小区"),
)
ISSUE_COLUMNS = (
    Column("编号", "key", True, "本单位的问题编号，重复导入时据此识别", "2020-001", ("序号",)),
    Column("反映时间", "submitted_at", True, "日期或日期时间", "2020-06-04 15:30"),
    Column("标题", "title", True, "", "小区路灯损坏"),
    Column("内容", "description", True, "问题和建议的内容", "进学街道某小区路灯夜间不亮"),
    Column("类别", "category", True, "本政协的问题类别之一（GET /categories）", "城市管理"),
    Column("社区", "community", False, "", "进学社区"),
    Column("联络站", "liaison_station", False, "", "进学街道联络站"),
    Column("来源", "source", False, "委员进基层、联络站、走访、网络或热线", "委员进基层"),
    Column("活动编号", "activity", False, "已导入活动的编号（或活动 id）", "HD-2020-01"),
    Column("记录委员", "recorded_by", False, "记录问题的委员", "张三"),
    Column("重点难点", "key_problem", False, "是或否，留空为否", "否"),
    Column("反映人", "reporter_name", False, "个人信息，加密保存", "王女士"),
    Column("联系电话", "reporter_phone", False, "个人信息，加密保存", "13800000000"),
)
COLUMNS: dict[str, tuple[Column, ...]] = {"activities": ACTIVITY_COLUMNS, "issues": ISSUE_COLUMNS}
SOURCE_NAMES = {
    "委员进基层": "outreach",
    "委员进基层活动": "outreach",
    "联络站": "liaison_station",
    "走访": "visit",
    "网络": "online",
    "网上": "online",
    "热线": "hotline",
}
_YES = {"是", "y", "yes", "true", "1", "√"}
_NO = {"否", "n", "no", "false", "0", ""}
_MEMBER_SEPARATORS = re.compile(r"[、，,;；\s]+")
_DATE = re.compile(
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]+(\d{1,2})[:：](\d{2})(?::(\d{2}))?)?$"
)


class ImportRefused(ValueError):
    """The file as a whole cannot be read (not a spreadsheet, no header, too many rows)."""


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str


@dataclass
class Checked:
    """The rows of a file: the aggregates of the good ones, the errors of the bad ones."""

    aggregates: list[tuple[int, Aggregate]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def read_table(data: bytes, filename: str) -> list[list[Any]]:
    """The rows of the first sheet of an .xlsx, or of a CSV in UTF-8 (with or without BOM)
    or GBK."""
    if filename.lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    if filename.lower().endswith((".csv", ".txt")) or not filename:
        return _read_csv(data)
    raise ImportRefused("只接受 .xlsx 或 .csv 文件 / only .xlsx or .csv files are accepted")


def _read_xlsx(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged file
        raise ImportRefused(f"无法读取 Excel 文件 / not a readable .xlsx file: {error}") from error
    try:
        sheet = workbook.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def _read_csv(data: bytes) -> list[list[Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            # GB18030 is a superset of GBK: what Excel writes for "CSV" on a Chinese Windows.
            text = data.decode("gb18030")
        except UnicodeDecodeError as error:
            raise ImportRefused(
                "CSV 文件编码应为 UTF-8 或 GBK / the CSV must be UTF-8 or GBK"
            ) from error
    return [list(row) for row in csv.reader(io.StringIO(text))]


def data_rows(
    table: list[list[Any]], kind: Kind, first_row: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, {field: cell}) for every non-empty row under the header."""
    if not table:
        raise ImportRefused("文件是空的 / the file is empty")
    columns = COLUMNS[kind]
    headers = [_cell_text(h) for h in table[0]]
    positions: dict[str, int] = {}
    for column in columns:
        for name in (column.header, *column.aliases):
            if name in headers:
                positions[column.field] = headers.index(name)
                break
    missing = [c.header for c in columns if c.required and c.field not in positions]
    if missing:
        raise ImportRefused(
            f"缺少列 / missing columns: {'、'.join(missing)}; 表头 / header found: "
            f"{'、'.join(h for h in headers if h)}"
        )
    if len(table) - 1 > MAX_ROWS:
        raise ImportRefused(f"一次最多导入 {MAX_ROWS} 行 / at most {MAX_ROWS} rows per file")
    for index, row in enumerate(table[1:]):
        values = {f: row[p] if p < len(row) else None for f, p in positions.items()}
        if all(_cell_text(v) == "" for v in values.values()):
            continue
        yield first_row + index, values


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _moment(value: Any) -> datetime:
    """A cell as an aware moment; a time or date without a zone is China Standard Time."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        match = _DATE.match(_cell_text(value))
        if match is None:
            try:
                moment = datetime.fromisoformat(_cell_text(value))
            except ValueError:
                raise ValueError(
                    "不是日期，应如 2020-06-04 或 2020-06-04 14:30 / not a date such as "
                    "2020-06-04 or 2020-06-04 14:30"
                ) from None
        else:
            year, month, day, hour, minute, second = (int(g or 0) for g in match.groups())
            try:
                moment = datetime(year, month, day, hour, minute, second)
            except ValueError as error:
                raise ValueError(f"日期无效 / not a valid date: {error}") from None
    return request_time(moment)


class RowChecker:
    """Turns rows into new aggregates for one office, collecting the errors of bad rows."""

    def __init__(
        self,
        kind: Kind,
        office: str,
        categories: tuple[str, ...],
        activity_of: Callable[[UUID], OutreachActivity | None],
    ) -> None:
        self.kind = kind
        self.office = office
        self.categories = categories
        self.activity_of = activity_of
        self.headers = {c.field: c.header for c in COLUMNS[kind]}
        self.result = Checked()
        self._keys: dict[UUID, int] = {}

    def check(self, rows: Iterator[tuple[int, dict[str, Any]]]) -> Checked:
        now = datetime.now(UTC)
        for number, values in rows:
            try:
                aggregate = self._build(values, now)
            except _Bad as bad:
                self._error(number, bad.field, bad.reason)
                continue
            except IssueRuleBroken as broken:
                self._error(number, broken.field, broken.reason)
                continue
            first = self._keys.setdefault(aggregate.id, number)
            if first != number:
                self._error(number, "key", f"编号与第 {first} 行重复 / same key as row {first}")
                continue
            self.result.aggregates.append((number, aggregate))
        return self.result

    def _error(self, row: int, field_name: str, reason: str) -> None:
        column = self.headers.get(field_name, self.headers.get(_FIELD_COLUMNS.get(field_name, "")))
        self.result.errors.append(RowError(row, column or field_name, reason))

    def _build(self, values: dict[str, Any], now: datetime) -> Aggregate:
        text = {f: _cell_text(v) for f, v in values.items()}
        for field_name, value in text.items():
            if (problem := text_problem(value)) is not None:
                raise _Bad(field_name, problem)
        for column in COLUMNS[self.kind]:
            if column.required and not text.get(column.field):
                raise _Bad(column.field, f"{column.header}不能为空 / {column.field} is required")
        if self.kind == "activities":
            held_at = _parsed(values, "held_at")
            key = text.get("key") or "|".join(
                [held_at.isoformat(), *(text.get(f, "") for f in _ACTIVITY_NATURAL_KEY)]
            )
            return OutreachActivity.record(
                activity_id_for(self.office, imported_key(key)),
                self.office,
                held_at,
                [m for m in _MEMBER_SEPARATORS.split(text["members"]) if m],
                now=now,
                community=text.get("community"),
                liaison_station=text.get("liaison_station"),
                activity_group=text.get("activity_group"),
                note=text.get("note"),
            )
        return Issue.submit(
            issue_id_for(self.office, imported_key(text["key"])),
            self.office,
            text["title"],
            text["description"],
            text["category"],
            _parsed(values, "submitted_at"),
            now=now,
            categories=self.categories,
            community=text.get("community"),
            liaison_station=text.get("liaison_station"),
            source=_source(text.get("source", "")),
            activity=self._activity(text.get("activity", "")),
            recorded_by=text.get("recorded_by"),
            key_problem=_yes_no(text.get("key_problem", "")),
            reporter_name=text.get("reporter_name"),
            reporter_phone=text.get("reporter_phone"),
        )

    def _activity(self, reference: str) -> OutreachActivity | None:
        if not reference:
            return None
        try:
            activity_id = UUID(reference)
        except ValueError:
            activity_id = activity_id_for(self.office, imported_key(reference))
        activity = self.activity_of(activity_id)
        if activity is None or activity.office != self.office:
            raise _Bad(
                "activity",
                f"没有编号为 {reference} 的活动，请先导入活动 / no activity {reference!r}: "
                "import the activities first",
            )
        return activity


_ACTIVITY_NATURAL_KEY = ("community", "liaison_station", "activity_group")
_FIELD_COLUMNS = {"activity_id": "activity"}


class _Bad(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def _parsed(values: dict[str, Any], field_name: str) -> datetime:
    try:
        return _moment(values[field_name])
    except ValueError as error:
        raise _Bad(field_name, str(error)) from None


def _source(text: str) -> str | None:
    if not text:
        return None
    source = SOURCE_NAMES.get(text, text)
    if source not in SOURCE_NAMES.values():
        raise _Bad("source", f"未知来源 {text} / unknown source; one of {'、'.join(SOURCE_NAMES)}")
    return source


def _yes_no(text: str) -> bool:
    if text.lower() in _YES:
        return True
    if text.lower() in _NO:
        return False
    raise _Bad("key_problem", f"应填“是”或“否” / expected 是 or 否, not {text!r}")


def template(kind: Kind) -> bytes:
    """The .xlsx template: the headers on the first sheet, how to fill them on the second."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "活动" if kind == "activities" else "问题"
    columns = COLUMNS[kind]
    sheet.append([c.header for c in columns])
    for cell, column in zip(sheet[1], columns, strict=True):
        cell.font = Font(bold=True)
        sheet.column_dimensions[cell.column_letter].width = max(12, len(column.example) * 2)
    guide = workbook.create_sheet("填写说明")
    guide.append(["列", "必填", "说明", "示例"])
    for column in columns:
        guide.append(
            [column.header, "是" if column.required else "否", column.explanation, column.example]
        )
    guide.append([])
    guide.append(
        ["从第 2 行起每行一条；第一张表的表头请勿修改。CSV 用同样的表头，UTF-8 或 GBK 编码。"]
    )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
