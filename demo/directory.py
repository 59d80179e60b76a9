"""The demo's notifications directory (通讯录): every department, office staff and leaders
of the scenario reached at an address of the `.example` domain (RFC 2606, never delivered
anywhere), set through the notifications service's public API; the demo's notices go to the
local mail sink."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Any

import httpx

from demo.content import content
from services.notifications.domain import department, leaders, office_staff
from shared.auth import Authenticator


def fill_sample_directory(url: str, authenticator: Authenticator) -> int:
    """`PUT /recipients/{key}` for each entry of the demo's directory at the notifications
    service at `url`; how many entries were set."""
    text = content()
    token = authenticator.mint(text.prefecture, ["admin"], subject="demo-directory")
    entries = sample_directory(text.offices, text.departments)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        for key, body in entries:
            response = client.put(f"/recipients/{urllib.parse.quote(key, safe='')}", json=body)
            response.raise_for_status()
    return len(entries)


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
