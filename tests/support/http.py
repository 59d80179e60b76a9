"""The headers and bodies the end-to-end tests send."""

from __future__ import annotations

import uuid
from typing import Any


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue_body(office: str = "yanji", year: int = 2020, **changes: Any) -> dict[str, Any]:
    body = {
        "office": office,
        "title": "小区路灯损坏",
        "description": f"进学街道某小区路灯夜间不亮 ({uuid.uuid4().hex[:8]})",
        "category": "城市管理",
        "submitted_at": f"{year}-06-04T15:30:00+08:00",
    }
    body.update(changes)
    return body
