"""`shangliang import` as an office's clerk types it, against `shangliang up`."""

from __future__ import annotations

import subprocess
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook

from tests.support.http import bearer
from tests.support.stack import ROOT, RunningStack, shangliang

HEADER = ["编号", "活动日期", "社区", "联络站", "活动小组", "参加委员", "备注"]


def activities_xlsx(path: Path, count: int, bad_rows: tuple[int, ...] = ()) -> Path:
    """`count` activities, one a Thursday afternoon each; the given file rows lack members."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    marker = uuid.uuid4().hex[:6]
    start = datetime(2020, 1, 2, 14, 30)
    for n in range(count):
        members = "" if n + 2 in bad_rows else "张三、李四、王五"
        sheet.append(
            [f"{marker}-{n}", start + timedelta(days=7 * (n % 52)), f"社区{n % 70}", "",
             f"第{n % 141}小组", members, ""]
        )  # fmt: skip
    workbook.save(path)
    return path


def run_import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shangliang("import", *args), cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["/nowhere/活动.xlsx", "--kind", "activities", "--office", "yanji"], "no such file"),
        (["x.xlsx", "--kind", "meetings", "--office", "yanji"], "invalid choice"),
        (["x.xlsx", "--kind", "issues"], "--office"),
    ],
    ids=["a missing file", "an unknown kind", "no office"],
)
def test_bad_arguments_get_a_clear_error_and_exit_2(arguments: list[str], complaint: str) -> None:
    result = run_import(*arguments)
    assert result.returncode == 2, result.stderr
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_no_spreadsheet_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_bytes(b"%PDF-1.4")
    result = run_import(str(path), "--kind", "issues", "--office", "yanji")
    assert result.returncode == 2
    assert ".xlsx" in result.stderr and "Traceback" not in result.stderr


def test_import_in_chunks_shows_progress_names_bad_rows_and_stores_once(
    stack: RunningStack, tmp_path: Path
) -> None:
    path = activities_xlsx(tmp_path / "活动.xlsx", 1200, bad_rows=(3, 1101))
    arguments = [str(path), "--kind", "activities", "--office", "yanji", "--url", stack.intake]

    first = run_import(*arguments, "--chunk", "500")
    again = run_import(*arguments)

    assert first.returncode == 1, first.stderr
    assert "1200/1200" in first.stderr  # the progress bar reached the end
    assert "stored 1198, unchanged 0, rejected 2" in first.stdout
    assert "row 3 [参加委员]" in first.stdout and "row 1101 [参加委员]" in first.stdout
    assert "stored 0, unchanged 1198, rejected 2" in again.stdout

    token = subprocess.run(
        shangliang("token", "--office", "yanji", "--role", "viewer"),
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    listed = httpx.get(
        f"{stack.intake}/activities",
        params={"community": "社区0", "page_size": 200},
        headers=bearer(token),
        timeout=10,
    )
    assert listed.status_code == 200
    assert listed.json()["total"] == len(range(0, 1200, 70))
