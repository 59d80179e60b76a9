"""The demo's verdict (演示结果): each figure the projections computed, beside the scenario's
exact number and the report's words, ticked or crossed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from demo.content import content
from demo.records import YEAR, Figures
from shared.offices import OFFICE_NAMES
from shared.text import display_width


@dataclass(frozen=True)
class FigureRow:
    """One line of the table: where the figure is in `Figures`, its label, the report's words."""

    path: tuple[str, ...]
    label: str
    report: str
    expected_field: str


ROWS = (
    FigureRow(
        ("outreach_activities",),
        "委员进基层活动 / outreach activities",
        "23 期",
        "outreach_activities",
    ),
    FigureRow(
        ("member_participations",),
        "参与委员 / member participations",
        "1100 余人次",
        "member_participations",
    ),
    FigureRow(
        ("issues_collected",), "收集问题和建议 / issues collected", "300 余个", "issues_collected"
    ),
    FigureRow(
        ("issues_resolved",), "解决实际问题 / issues resolved", "120 余件", "issues_resolved"
    ),
    FigureRow(
        ("meetings_held", "thematic"), "专题协商会议 / thematic meetings", "2 期", "thematic"
    ),
    FigureRow(("meetings_held", "onsite"), "现场协商会议 / on-site meetings", "1 期", "onsite"),
    FigureRow(("meetings_held", "written"), "书面协商会议 / written meetings", "2 期", "written"),
    FigureRow(
        ("key_problems_resolved",),
        "重点难点问题解决 / key problems resolved",
        "18 个",
        "key_problems_resolved",
    ),
    FigureRow(
        ("reports_forwarded",),
        "转《社情民意》 / reports forwarded",
        "部分 / some",
        "reports_forwarded",
    ),
    FigureRow(("letters_issued",), "督办函 / supervision letters", "—", "letters_issued"),
    FigureRow(("cases_overdue",), "逾期督办件 / cases overdue", "—", "cases_overdue"),
    FigureRow(("issues_called_back",), "回访 / follow-up calls", "—", "issues_called_back"),
    FigureRow(("callbacks_reached",), "回访联系上 / residents reached", "—", "callbacks_reached"),
    FigureRow(
        ("callbacks_satisfied",),
        "满意（含基本满意）/ satisfied",
        "—",
        "callbacks_satisfied",
    ),
)


@dataclass(frozen=True)
class RowResult:
    row: FigureRow
    actual: int | None
    expected: int

    @property
    def ok(self) -> bool:
        if self.actual is None:
            return False
        return self.actual == self.expected


@dataclass(frozen=True)
class Notices:
    """What the notifications service had sent when the demo stopped waiting for it: its
    `GET /deliveries/summary`, and whether it settled within the wait."""

    summary: Mapping[str, Any]
    settled: bool
    waited: float

    @property
    def sent(self) -> int:
        return int(self.summary["sent"])

    @property
    def waiting(self) -> int:
        s = self.summary
        return int(s["due"] + s["later"] + s["in_flight"] + s["retrying"])

    def line(self) -> str:
        """Sent and waiting, and why they wait; Chinese first."""
        s = self.summary
        quiet = s["due"] if s["quiet_hours"] else 0
        why_zh = f"免打扰时段 {quiet}，重试中 {s['retrying']}，稍后 {s['later']}"
        why_en = f"quiet hours {quiet}, retrying {s['retrying']}, later {s['later']}"
        if not self.settled:
            why_zh += f"，{self.waited:.0f} 秒后仍在发送 {s['due'] - quiet + s['in_flight']}"
            why_en += (
                f", still sending {s['due'] - quiet + s['in_flight']} after {self.waited:.0f} s"
            )
        dead_zh = (
            f"；失败 {s['dead']} 条（shangliang notifications dead-letters）" if s["dead"] else ""
        )
        dead_en = f"; {s['dead']} dead letters" if s["dead"] else ""
        return (
            f"通知：已发送 {self.sent} 条，等待 {self.waiting} 条（{why_zh}）{dead_zh} / "
            f"notices: {self.sent} sent, {self.waiting} waiting ({why_en}){dead_en}"
        )


@dataclass(frozen=True)
class LoadResult:
    writes: int
    created: int
    existing: int
    statistics: dict[str, Any]
    rows: tuple[RowResult, ...]
    notices: Notices | None = None
    """None when the demo ran without the notifications service."""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)


def compare(total: Mapping[str, Any], expected: Figures) -> tuple[RowResult, ...]:
    """Each figure the projections computed beside the scenario's exact number."""
    results = []
    for row in ROWS:
        value: Any = total
        for part in row.path:
            value = value.get(part) if isinstance(value, Mapping) else None
        actual = value if isinstance(value, int) else None
        results.append(RowResult(row, actual, getattr(expected, row.expected_field)))
    return tuple(results)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(0, width - display_width(text))
    return gap + text if right else text + gap


def format_table(result: LoadResult) -> str:
    """The figures the projections computed, beside the report's, with ✓/✗ each."""
    header = ("指标 / figure", "统计 / computed", "报告 / report", "")
    lines = []
    for r in result.rows:
        mark = "✓" if r.ok else f"✗ 应为 / expected {r.expected}"
        actual = "—" if r.actual is None else str(r.actual)
        lines.append((r.row.label, actual, r.row.report, mark))
    widths = [max(display_width(line[n]) for line in [header, *lines]) for n in range(3)]
    rule = "-" * (sum(widths) + 8)
    year = result.statistics.get("year", YEAR)
    offices = " + ".join(f"{OFFICE_NAMES[o]} {o}" for o in content().offices)

    def render(line: tuple[str, str, str, str]) -> str:
        return (
            f"{_pad(line[0], widths[0])}  {_pad(line[1], widths[1], right=True)}  "
            f"{_pad(line[2], widths[2])}  {line[3]}"
        ).rstrip()

    return "\n".join(
        [
            f"{year} 年“有事来商量”试点统计 / statistics of the {year} pilot ({offices})",
            rule,
            render(header),
            rule,
            *(render(line) for line in lines),
            rule,
        ]
    )
