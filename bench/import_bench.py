"""Spreadsheet import speed (表格导入): 10,000 issue rows into a fresh embedded pipeline.

    .venv/bin/python -m bench.import_bench [--rows 10000] [--chunk 500]

Starts nats-server, intake and projections in a temporary folder (as `bench.run` does),
imports 100 activities, then the issue rows three ways, each timed from the first byte sent
to the answer: the whole .xlsx in one request, a re-import of the same file (stores
nothing), and `shangliang import` (a fresh key per row, sent in chunks with its progress
bar). Every row is checked and stored with its reporter's phone number encrypted.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from openpyxl import Workbook

from bench.processes import event_store, pipeline
from services.intake.imports import ACTIVITY_COLUMNS, ISSUE_COLUMNS
from shared.auth import Authenticator
from shared.settings import Settings

CATEGORIES = ("城市管理", "物业管理", "生态环境", "校园周边", "交通出行", "民生保障", "其他")
SOURCES = ("委员进基层", "联络站", "走访", "网络", "热线")


def workbook_bytes(rows: list[list[object]]) -> bytes:
    """Saved as Excel saves it, text in the shared-strings table (openpyxl's write-only mode
    writes inline strings, which take openpyxl several times longer to read back)."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def activities(marker: str, count: int = 100) -> bytes:
    start = datetime(2020, 1, 2, 14, 30)
    rows: list[list[object]] = [[c.header for c in ACTIVITY_COLUMNS]]
    for n in range(count):
        held = start + timedelta(days=7 * (n % 52))
        rows.append([f"{marker}-A{n}", held, f"社区{n % 70}", "", f"第{n}小组", "张三、李四", ""])
    return workbook_bytes(rows)


def issues(marker: str, count: int, key_prefix: str = "") -> bytes:
    start = datetime(2020, 1, 2, 15, 0)
    rows: list[list[object]] = [[c.header for c in ISSUE_COLUMNS]]
    for n in range(count):
        rows.append(
            [
                f"{key_prefix}{marker}-{n}",
                start + timedelta(minutes=47 * n % (360 * 24 * 60)),
                f"问题 {n}：小区路灯损坏",
                f"进学街道某小区路灯夜间不亮，居民出行不便（第 {n} 条）",
                CATEGORIES[n % len(CATEGORIES)],
                f"社区{n % 70}",
                "",
                SOURCES[n % len(SOURCES)],
                f"{marker}-A{n % 100}",
                "张三",
                "是" if n % 17 == 0 else "否",
                "王女士",
                f"138{n:08d}",
            ]
        )
    return workbook_bytes(rows)


def timed_post(http: httpx.Client, url: str, data: bytes, name: str) -> tuple[float, dict]:
    started = time.perf_counter()
    response = http.post(url, files={"file": (name, data)})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=500)
    args = parser.parse_args()
    token = Authenticator(Settings()).mint("yanji", ["clerk"], subject="import-bench")
    marker = uuid.uuid4().hex[:6]
    with (
        tempfile.TemporaryDirectory() as folder,
        event_store("sqlite", Path(folder), "") as store,
        pipeline(Path(folder), store) as target,
    ):
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=target.base_url, headers=headers, timeout=300) as http:
            _, answer = timed_post(http, "/imports/activities", activities(marker), "a.xlsx")
            assert answer["stored"] == 100, answer
            data = issues(marker, args.rows)
            print(f"{args.rows} issue rows, .xlsx of {len(data) / 2**20:.1f} MiB")
            first, answer = timed_post(http, "/imports/issues", data, "issues.xlsx")
            assert (answer["stored"], answer["errors"]) == (args.rows, []), answer
            print(f"  one request:        {first:6.2f} s  ({args.rows / first:,.0f} rows/s)")
            again, answer = timed_post(http, "/imports/issues", data, "issues.xlsx")
            assert (answer["stored"], answer["unchanged"]) == (0, args.rows), answer
            print(f"  re-import (none new): {again:4.2f} s")
        path = Path(folder) / "issues-cli.xlsx"
        path.write_bytes(issues(marker, args.rows, key_prefix="cli-"))
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tools.cli", "import", str(path), "--kind", "issues",
             "--office", "yanji", "--url", target.base_url, "--token", token,
             "--chunk", str(args.chunk)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        cli = time.perf_counter() - started
        print(f"  shangliang import:  {cli:6.2f} s  (chunks of {args.chunk}, start-up included)")


if __name__ == "__main__":
    main()
