"""The demo's reference data (演示基础资料): Yanji's members, expert panel, departments, venues.

Loaded through the public HTTP API, like everything else the demo does, so a second load
changes nothing (people have fixed ids, venues and departments are named).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

SEED = Path(__file__).with_name("data") / "seed_yanji.json"


def seed_requests(path: Path = SEED) -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of every registration, departments first: department heads name one."""
    seed = json.loads(path.read_text(encoding="utf-8"))
    return [
        *(("/departments", {"name": name}) for name in seed["departments"]),
        *(("/venues", venue) for venue in seed["venues"]),
        *(("/people", person) for person in seed["people"]),
    ]


def load_seed(client: httpx.Client, path: Path = SEED) -> int:
    """Register the seed with the meetings service that `client` reaches (its `base_url`),
    as the office its token names (role `meetings`); returns how many were new."""
    created = 0
    for route, body in seed_requests(path):
        answer = client.post(route, json=body)
        answer.raise_for_status()
        created += answer.status_code == httpx.codes.CREATED
    return created
