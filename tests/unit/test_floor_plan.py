"""The floor plan (docs/ARCHITECTURE.md) kept: each service the same shape, and the machinery
the services share written once in shared/. The import rules (no service imports another, no
circles) are import-linter's contracts in pyproject.toml, run by `make lint`; this checks
what imports cannot show: where a mechanism is defined."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = ("services", "shared", "tools", "demo")
SERVICES = ROOT / "services"

SHAPE = ("domain.py", "application.py", "api.py", "schemas.py", "settings.py", "main.py")
"""What every service that owns aggregates has; consumers.py and publishing.py where it
follows other streams and publishes its own."""


def modules() -> Iterator[tuple[Path, ast.Module]]:
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def where(predicate: object) -> set[str]:
    found = set()
    for path, tree in modules():
        for node in ast.walk(tree):
            if predicate(node):  # type: ignore[operator]
                found.add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize(
    "names, home",
    [
        (
            {"china_day", "china_time", "end_of_day", "start_of_day", "is_working_day"},
            "shared/clock.py",
        ),
        ({"add_working_days", "working_days", "working_days_between"}, "shared/clock.py"),
        ({"fingerprint", "body_fingerprint", "retry_on_conflict"}, "shared/commands.py"),
        ({"retry_on_conflict_sync", "decide_and_save"}, "shared/commands.py"),
        ({"backoff", "retry_forever"}, "shared/messaging.py"),
    ],
)
def test_each_shared_mechanism_is_defined_once(names: set[str], home: str) -> None:
    defined = where(
        lambda node: isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in names
    )
    assert defined == {home}


def test_the_china_zone_is_named_once() -> None:
    def zone(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "ZoneInfo"
            and any(isinstance(a, ast.Constant) and a.value == "Asia/Shanghai" for a in node.args)
        )

    assert where(zone) == {"shared/clock.py"}


def test_the_official_calendar_is_read_in_one_place() -> None:
    def reads(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Import) and any(a.name == "chinese_calendar" for a in node.names)
        ) or (
            isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chinese_calendar")
        )

    assert where(reads) == {"shared/clock.py"}


def test_no_hand_written_exponential_backoff_in_the_services_or_shared() -> None:
    """A retry wait that doubles is tenacity's (`shared.messaging.backoff`), not a loop's
    `delay = min(delay * 2, cap)`; the launcher's restart schedule is a supervisor's policy."""

    def doubling(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.BinOp | ast.AugAssign)
            and isinstance(node.op, ast.Mult)
            and "delay" in ast.unparse(node.target if isinstance(node, ast.AugAssign) else node)
        )

    assert {p for p in where(doubling) if not p.startswith("tools/")} == set()


@pytest.mark.parametrize("service", ["intake", "meetings", "supervision", "notifications"])
def test_every_service_has_the_same_rooms(service: str) -> None:
    present = {path.name for path in (SERVICES / service).glob("*.py")}
    assert set(SHAPE) <= present
    assert not {"views.py", "config.py", "workdays.py"} & present


def test_the_services_folder_holds_services_only() -> None:
    loose = {path.name for path in SERVICES.glob("*.py")} - {"__init__.py"}
    assert loose == set()
