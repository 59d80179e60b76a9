"""The `shangliang` command as a user types it."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from demo.load import DEMO_ROLES
from demo.load import SERVICES as DEMO_SERVICES
from demo.scenario import generate
from demo.table import ROWS
from services.console.main import accounts_of
from services.console.settings import ConsoleSettings
from shared.auth import Authenticator
from shared.settings import Settings
from tests.support.processes import processes_mentioning
from tests.support.stack import ROOT, shangliang, stack_environment
from tools.launcher import PASSWORDS_FILE, SERVICES


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


NOT_STARTED = sorted(set(DEMO_SERVICES) - {spec.name for spec in SERVICES})
needs_every_service = pytest.mark.skipif(
    bool(NOT_STARTED),
    reason=f"the demo loads through {', '.join(NOT_STARTED)}, which `shangliang up` does not "
    "start in this build",
)


def figures_table(output: str) -> dict[str, list[str]]:
    """The table's rows by label: computed value, report's words and mark."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "试点统计 / statistics of the 2020" in line)
    rows = {}
    for line in lines[start:]:
        label = next((row.label for row in ROWS if line.startswith(row.label)), None)
        if label is not None:
            rows[label] = line[len(label) :].split()
    return rows


def demo_accounts_printed(output: str) -> dict[str, str]:
    """The demo's workbench accounts: password by name."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "演示账号 / demo accounts" in line)
    found = {}
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        name, password, *_ = line.split()
        found[name] = password
    return found


def writes(output: str) -> tuple[int, int]:
    """(new, already there) from the line `N writes (X new, Y already there)`."""
    line = next(line for line in output.splitlines() if "already there)" in line)
    inside = line.rsplit("(", 1)[1]
    return int(inside.split()[0]), int(inside.split(", ")[1].split()[0])


def notices(output: str) -> tuple[int, int, int]:
    """(sent, waiting) from the notices' line, and the .eml files the sink line counts."""
    line = next(line for line in output.splitlines() if line.startswith("通知：已发送"))
    english = line.split(" / notices: ", 1)[1]
    sent, waiting = int(english.split()[0]), int(english.split(", ")[1].split()[0])
    mail = next(line for line in output.splitlines() if line.startswith("通知邮件 / notices"))
    return sent, waiting, int(mail.split(": ", 1)[1].split()[0])


@needs_every_service
# Two full demos, each waiting for supervision's scan after the load: about half a minute each.
@pytest.mark.timeout(480)
def test_demo_once_prints_the_reports_figures_and_a_rerun_stores_nothing_new(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = stack_environment(data_dir)
    expected = generate().expected

    def demo_once() -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            shangliang("demo", "--once"),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert processes_mentioning(str(data_dir)) == [], "demo --once left processes behind"
        return result

    first = demo_once()
    table = figures_table(first.stdout)
    assert len(table) == len(ROWS)
    for row in ROWS:
        computed, *_, mark = table[row.label]
        assert mark == "✓", (row.label, table[row.label])
        assert int(computed) == getattr(expected, row.expected_field), row.label
    assert table["收集问题和建议 / issues collected"][:2] == ["316", "300"]
    new, already = writes(first.stdout)
    assert new > 0 and already == 0
    # `--once` waited for the notices: all sent before it stopped, each a file in the sink.
    sent, waiting, files = notices(first.stdout)
    assert sent > 0 and waiting == 0 and files == sent, first.stdout
    assert len(list((data_dir / "mail").glob("*.eml"))) >= sent
    passwords = data_dir / PASSWORDS_FILE  # the NATS users' passwords, the owner's only
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    generated = passwords.read_text()

    printed = demo_accounts_printed(first.stdout)
    assert {f"{office}-{role}" for office in ("yanbian", "yanji") for role in DEMO_ROLES} <= set(
        printed
    )
    workbench = f"工作台 / workbench: http://127.0.0.1:{env['SHANGLIANG_CONSOLE_PORT']}/"
    assert workbench in first.stdout
    accounts = accounts_of(Settings(data_dir=data_dir), ConsoleSettings())
    assert accounts.authenticate("yanji-clerk", printed["yanji-clerk"]).office == "yanji"

    second = demo_once()
    assert demo_accounts_printed(second.stdout)["yanji-clerk"] != printed["yanji-clerk"]
    assert figures_table(second.stdout) == table
    assert writes(second.stdout) == (0, new)
    # Nothing sent twice: the same notices (and at most today's digests, made at the start).
    again, waiting, files = notices(second.stdout)
    assert waiting == 0 and sent <= again <= sent + 3 and files == again, second.stdout
    assert passwords.read_text() == generated
