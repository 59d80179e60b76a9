"""The offices' short names (政协简称), as the dashboard and the exports show them."""

from __future__ import annotations

OFFICE_NAMES = {
    "yanbian": "延边州政协",
    "yanji": "延吉市政协",
    "tumen": "图们市政协",
    "dunhua": "敦化市政协",
    "hunchun": "珲春市政协",
    "longjing": "龙井市政协",
    "helong": "和龙市政协",
    "wangqing": "汪清县政协",
    "antu": "安图县政协",
}


def office_name(code: str) -> str:
    """The short name of an office; an office not in the list by its code."""
    return OFFICE_NAMES.get(code, code)
