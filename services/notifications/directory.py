"""Directory entries (通讯录) for a local run: every department, office staff and leaders
reached at an address of the `.example` domain (RFC 2606, never delivered anywhere), for the
demo, whose notices go to the local mail sink."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.notifications.domain import department, leaders, office_staff


def sample_directory(
    offices: Iterable[str], departments: Iterable[str]
) -> list[tuple[str, dict[str, Any]]]:
    entries: list[tuple[str, dict[str, Any]]] = []
    names = list(departments)
    for office in offices:
        entries.append(
            (
                office_staff(office),
                _entry(f"{office} 政协机关 / office", f"office@{office}.example"),
            )
        )
        entries.append(
            (leaders(office), _entry(f"{office} 政协领导 / leaders", f"leaders@{office}.example"))
        )
        entries += [
            (department(office, name), _entry(name, f"department-{n}@{office}.example"))
            for n, name in enumerate(names, start=1)
        ]
    return entries


def _entry(name: str, address: str) -> dict[str, Any]:
    return {"name": name, "emails": [address], "robots": [], "users": []}
