"""The dashboard ships everything it needs: offices run it on intranets with no internet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.projections.dashboard import MEDIA_TYPES, STATIC

BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# Only whole-line `//` comments: a `//` after code may sit inside a string.
LINE_COMMENT = re.compile(r"^\s*//.*$", re.MULTILINE)
URL = re.compile(r"\b(?:https?|ftp|wss?):|(?<![:\w])//[\w-]+\.[\w.-]+", re.IGNORECASE)
REQUIRED_FONTS = ("PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei")


def static_files() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*") if p.is_file())


def without_comments(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".js", ".css"):
        text = BLOCK_COMMENT.sub("", text)
    if path.suffix == ".js":
        text = LINE_COMMENT.sub("", text)
    if path.suffix in (".html", ".svg"):
        text = HTML_COMMENT.sub("", text)
    return text


def is_license(path: Path) -> bool:
    return path.stem.upper().startswith(("LICENSE", "COPYING", "NOTICE"))


@pytest.mark.parametrize("path", static_files(), ids=lambda p: str(p.relative_to(STATIC)))
def test_no_static_file_names_an_outside_address(path):
    if is_license(path):
        return
    found = URL.findall(without_comments(path))
    assert found == [], f"{path.name} reaches outside the service: {found}"


def test_the_url_check_catches_what_a_cdn_link_looks_like(tmp_path):
    for line in (
        '<script src="https://cdn.jsdelivr.net/npm/echarts"></script>',
        '<link href="//fonts.googleapis.com/css?family=Noto" rel="stylesheet">',
        "@import url(http://example.org/x.css);",
        "const socket = new WebSocket('wss://example.org');",
    ):
        page = tmp_path / "page.html"
        page.write_text(line, encoding="utf-8")
        assert URL.findall(without_comments(page)), line
    script = tmp_path / "ok.js"
    script.write_text("// see https://example.org\n/* https://x.org */ const a = 1;\n")
    assert URL.findall(without_comments(script)) == []


def test_every_file_the_page_loads_is_shipped_and_served():
    page = (STATIC / "dashboard.html").read_text(encoding="utf-8")
    referenced = re.findall(r'(?:src|href)="dashboard/static/([^"]+)"', page)
    assert {"dashboard.js", "dashboard.css"} <= set(referenced)
    for name in referenced:
        assert (STATIC / name).is_file(), name
        assert Path(name).suffix in MEDIA_TYPES, name
    others = re.findall(r'(?:src|href)="([^"#]+)"', without_comments(STATIC / "dashboard.html"))
    assert [o for o in others if not o.startswith(("dashboard/static/", "data:"))] == []


def test_the_font_stack_names_chinese_system_fonts_and_loads_none():
    css = without_comments(STATIC / "dashboard.css")
    for font in REQUIRED_FONTS:
        assert f'"{font}"' in css, font
    assert "@font-face" not in css
    assert "url(" not in css
