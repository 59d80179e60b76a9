"""The offices' names (政协名称): the short name (简称) the dashboard and the exports show, and
the full name (全称) that heads an office's letters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class OfficeNames:
    """An office's two names (简称 / 全称)."""

    short: str
    full: str


OFFICES = {
    "yanbian": OfficeNames("延边州政协", "政协延边朝鲜族自治州委员会"),
    "yanji": OfficeNames("延吉市政协", "政协延吉市委员会"),
    "tumen": OfficeNames("图们市政协", "政协图们市委员会"),
    "dunhua": OfficeNames("敦化市政协", "政协敦化市委员会"),
    "hunchun": OfficeNames("珲春市政协", "政协珲春市委员会"),
    "longjing": OfficeNames("龙井市政协", "政协龙井市委员会"),
    "helong": OfficeNames("和龙市政协", "政协和龙市委员会"),
    "wangqing": OfficeNames("汪清县政协", "政协汪清县委员会"),
    "antu": OfficeNames("安图县政协", "政协安图县委员会"),
}
"""The offices of the 2020 pilot, by code."""

OFFICE_NAMES = {code: names.short for code, names in OFFICES.items()}
"""The short names by code, as a plain map (the demo's table prints them)."""


def office_name(code: str) -> str:
    """The short name of an office (政协简称); an office not in the list by its code."""
    return OFFICE_NAMES.get(code, code)


def office_full_name(code: str, overrides: Mapping[str, str] | None = None) -> str:
    """The full name of an office (政协全称) as its letters are headed: the deployment's own
    (`overrides`, the `office_names` setting) first, then the list, else one made of the code."""
    known = OFFICES.get(code)
    return (overrides or {}).get(code) or (known.full if known else None) or f"政协{code}委员会"
