"""The `shangliang` command as a user types it."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from services.demo import SCENARIO
from shared.auth import Authenticator
from shared.settings import Settings
from tests.e2e.conftest import ROOT, processes_mentioning, shangliang, stack_environment


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--office", "atlantis", "--role", "clerk"], "unknown office 'atlantis'"),
        (["--office", "yanji", "--role", "emperor"], "unknown role"),
        (["--office", "yanji", "--role", "department"], "needs a department"),
    ],
    ids=["an unknown office", "an unknown role", "a department role without a department"],
)
def test_token_with_bad_input_prints_a_clear_error_and_exits_2(
    arguments: list[str], complaint: str
) -> None:
    result = subprocess.run(
        shangliang("token", *arguments), cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert complaint in result.stderr
    assert "错误 / error" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_prints_only_a_token_naming_the_office_and_roles() -> None:
    result = subprocess.run(
        shangliang("token", "--office", "tumen", "--role", "clerk", "--role", "leader"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    principal = Authenticator(Settings()).verify(result.stdout.strip())
    assert (principal.office, principal.roles) == ("tumen", frozenset({"clerk", "leader"}))


def statistics_table(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("2020 年度统计"))
    end = next(i for i, line in enumerate(lines) if line.startswith("合计 total"))
    return lines[start : end + 1]


def count_in(table: list[str], label: str) -> int:
    return int(next(line for line in table if label in line).split()[-1])


def test_demo_once_prints_the_2020_statistics_and_a_rerun_prints_the_same(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = stack_environment(data_dir)

    def demo_once() -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            shangliang("demo", "--once"),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert processes_mentioning(str(data_dir)) == [], "demo --once left processes behind"
        return result

    first = demo_once()
    table = statistics_table(first.stdout)
    per_office = Counter(issue.office for issue in SCENARIO)
    assert count_in(table, "yanji") == per_office["yanji"]
    assert count_in(table, "tumen") == per_office["tumen"]
    assert count_in(table, "合计 total") == len(SCENARIO)
    assert f"({len(SCENARIO)} new, 0 already there)" in first.stdout

    second = demo_once()
    assert statistics_table(second.stdout) == table
    assert f"(0 new, {len(SCENARIO)} already there)" in second.stdout
