"""Text as it is printed (排版): widths of Chinese text in fixed-width columns."""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """Columns a terminal or a spreadsheet uses: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
