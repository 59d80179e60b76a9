"""The demo's verdict and its error messages: what a user reads when the figures or a request
go wrong."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo import content as demo_content
from demo.content import DATA, FILES, DemoDataMissing, content
from demo.load import DemoError, _explain, load_scenario
from demo.scenario import generate
from demo.table import ROWS, LoadResult, Notices, RowResult, compare, format_table
from services.intake.main import create_app
from shared.auth import Authenticator
from shared.settings import Settings
from tools import launcher
from tools.cli import main as shangliang

EXPECTED = generate().expected


def figures(**changes: Any) -> dict[str, Any]:
    """A `Figures` answer as docs/API.md describes it, equal to the scenario unless changed."""
    total: dict[str, Any] = {
        "office": "total",
        "outreach_activities": EXPECTED.outreach_activities,
        "member_participations": EXPECTED.member_participations,
        "issues_collected": EXPECTED.issues_collected,
        "issues_resolved": EXPECTED.issues_resolved,
        "meetings_held": {
            "thematic": EXPECTED.thematic,
            "onsite": EXPECTED.onsite,
            "written": EXPECTED.written,
        },
        "key_problems_resolved": EXPECTED.key_problems_resolved,
        "reports_forwarded": EXPECTED.reports_forwarded,
        "letters_issued": EXPECTED.letters_issued,
        "cases_overdue": EXPECTED.cases_overdue,
        "median_days_to_resolution": 21.0,
        "issues_called_back": EXPECTED.issues_called_back,
        "callbacks_reached": EXPECTED.callbacks_reached,
        "callbacks_satisfied": EXPECTED.callbacks_satisfied,
    }
    total.update(changes)
    return total


def result(total: dict[str, Any]) -> LoadResult:
    statistics = {"year": 2020, "as_of": "2020-12-31", "offices": [], "total": total}
    return LoadResult(10, 5, 0, statistics, compare(total, EXPECTED))


def test_figures_equal_to_the_scenarios_are_all_ticked() -> None:
    table = format_table(result(figures()))
    assert all(r.ok for r in compare(figures(), EXPECTED))
    assert table.count("✓") == len(ROWS) and "✗" not in table
    assert "收集问题和建议 / issues collected" in table
    line = next(line for line in table.splitlines() if "issues collected" in line)
    assert line.split()[-4:] == [str(EXPECTED.issues_collected), "300", "余个", "✓"]


def test_a_figure_one_off_is_crossed_and_names_the_expected_number() -> None:
    total = figures(issues_resolved=EXPECTED.issues_resolved - 1)
    rows = compare(total, EXPECTED)
    assert [r.row.label for r in rows if not r.ok] == ["解决实际问题 / issues resolved"]
    line = next(line for line in format_table(result(total)).splitlines() if "resolved" in line)
    assert f"✗ 应为 / expected {EXPECTED.issues_resolved}" in line
    assert not result(total).ok


def test_a_meeting_kind_counted_twice_is_crossed() -> None:
    total = figures()
    total["meetings_held"] = {**total["meetings_held"], "thematic": EXPECTED.thematic + 1}
    assert [r.row.label for r in compare(total, EXPECTED) if not r.ok] == [
        "专题协商会议 / thematic meetings"
    ]


def test_a_missing_figure_shows_a_dash_and_is_crossed() -> None:
    total = figures()
    del total["key_problems_resolved"]
    line = next(line for line in format_table(result(total)).splitlines() if "key problems" in line)
    assert "—" in line and "✗" in line


def row_of(figure: str, total: dict[str, Any]) -> RowResult:
    return next(r for r in compare(total, EXPECTED) if r.row.expected_field == figure)


def test_overdue_cases_must_be_exactly_the_scenarios() -> None:
    assert row_of("cases_overdue", figures()).ok
    assert not row_of("cases_overdue", figures(cases_overdue=EXPECTED.cases_overdue + 1)).ok
    assert not row_of("cases_overdue", figures(cases_overdue=EXPECTED.cases_overdue - 1)).ok


def test_follow_up_calls_must_be_exactly_the_scenarios() -> None:
    assert EXPECTED.issues_called_back > EXPECTED.callbacks_satisfied > 0
    for figure in ("issues_called_back", "callbacks_reached", "callbacks_satisfied"):
        assert row_of(figure, figures()).ok
        assert not row_of(figure, figures(**{figure: getattr(EXPECTED, figure) + 1})).ok


def test_the_table_does_not_change_its_input() -> None:
    total = figures()
    before = copy.deepcopy(total)
    format_table(result(total))
    assert total == before


async def test_a_refused_request_is_explained_with_its_path_status_and_the_services_words(
    tmp_path: Path,
) -> None:
    """Against the real intake app: a 422 names the request and the refused field."""
    settings = Settings(data_dir=tmp_path)
    token = Authenticator(settings).mint("yanji", ["clerk"], subject="test")
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        response = await http.post(
            "/issues",
            json={"office": "yanji", "title": "", "description": "x", "category": "其他"},
            headers={"Authorization": f"Bearer {token}"},
        )
    message = _explain("收集问题 / submitting issue i001", response)
    assert message.startswith("收集问题 / submitting issue i001: POST /issues → HTTP 422: ")
    assert "title" in message and "submitted_at" in message


def summary(**changes: Any) -> dict[str, Any]:
    """A `GET /deliveries/summary` answer (docs/API.md), settled unless changed."""
    found: dict[str, Any] = {
        "due": 0, "later": 0, "in_flight": 0, "retrying": 0, "sent": 633, "dead": 0,
        "resent_after_crash": 0, "quiet_hours": False, "behind": [], "settled": True,
    }  # fmt: skip
    return found | changes


def test_the_notices_line_says_what_was_sent_and_why_the_rest_waits_chinese_first() -> None:
    done = Notices(summary(), settled=True, waited=2.0)
    assert done.line() == (
        "通知：已发送 633 条，等待 0 条（免打扰时段 0，重试中 0，稍后 0） / "
        "notices: 633 sent, 0 waiting (quiet hours 0, retrying 0, later 0)"
    )
    night = Notices(summary(due=40, retrying=2, dead=1, quiet_hours=True), True, 1.0)
    assert night.waiting == 42
    assert night.line().startswith("通知：已发送 633 条，等待 42 条（免打扰时段 40，重试中 2")
    assert "；失败 1 条" in night.line() and night.line().endswith("; 1 dead letters")
    slow = Notices(summary(due=5, in_flight=3, settled=False), settled=False, waited=120.4)
    assert "120 秒后仍在发送 8" in slow.line() and "still sending 8 after 120 s" in slow.line()


def test_the_demo_refuses_to_start_without_every_service() -> None:
    with pytest.raises(DemoError, match="meetings, supervision"):
        load_scenario(
            Authenticator(Settings()),
            {"intake": "http://127.0.0.1:9", "projections": "http://127.0.0.1:9"},
        )


def test_a_service_that_does_not_answer_is_named_with_the_request() -> None:
    closed = "http://127.0.0.1:9"
    urls = {name: closed for name in ("intake", "meetings", "supervision", "projections")}
    with pytest.raises(DemoError, match=r"POST http://127\.0\.0\.1:9/\S+ 无应答 / got no answer"):
        load_scenario(Authenticator(Settings()), urls, wait_seconds=1)


def test_without_its_data_files_the_demo_says_where_it_looked_in_chinese_then_english(
    tmp_path: Path,
) -> None:
    with pytest.raises(DemoDataMissing) as raised:
        content(tmp_path / "not-here")
    message = str(raised.value)
    assert message.startswith("找不到演示数据")
    assert "the demo's data is not here" in message and str(tmp_path / "not-here") in message


def copy_of_the_data(folder: Path) -> Path:
    folder.mkdir()
    for name in FILES:
        shutil.copy(DATA / f"{name}.json", folder / f"{name}.json")
    return folder


def test_a_missing_or_broken_data_file_is_named(tmp_path: Path) -> None:
    assert content(copy_of_the_data(tmp_path / "copy")).targets == content().targets
    broken = copy_of_the_data(tmp_path / "broken")
    (broken / "meetings.json").write_text('{"plans": [{"key": "m1"}]}')
    with pytest.raises(DemoDataMissing, match=r"演示数据不完整 .* incomplete"):
        content(broken)
    missing = copy_of_the_data(tmp_path / "missing")
    (missing / "report.json").unlink()
    with pytest.raises(DemoDataMissing, match=r"缺少演示数据文件 .*report\.json"):
        content(missing)


def test_shangliang_demo_without_its_data_stops_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """As from a wheel, which carries no demo data: a message, exit 1, no traceback."""
    monkeypatch.setattr(demo_content, "DATA", tmp_path / "no-data")
    monkeypatch.setattr(launcher.Stack, "start", lambda self: pytest.fail("the stack started"))
    monkeypatch.setenv("SHANGLIANG_DATA_DIR", str(tmp_path / "data"))
    assert shangliang(["demo", "--once"]) == 1
    said = capsys.readouterr()
    assert said.err.startswith("错误 / error: 找不到演示数据")
    assert "an installed wheel carries no demo data" in said.err
    assert "Traceback" not in said.err + said.out
