"""The dashboard page (统计看板): static HTML, JS and CSS that read only the projections API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent / "static"

# The page must work on an office intranet with no internet: the policy lets the browser load
# nothing that does not come from this service, so a stray CDN link fails loudly in testing.
# `blob:` is for the export downloads, which are fetched with the bearer token.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    # The token may arrive in the address (`?token=`) before the page moves it out.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # A new deployment must be seen at once; the ETag keeps revalidation cheap.
    "Cache-Control": "no-cache",
}

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}

router = APIRouter(tags=["dashboard"])


def _file(path: Path) -> FileResponse:
    media_type = MEDIA_TYPES.get(path.suffix)
    if media_type is None or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这个文件 / no such file")
    return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/dashboard", response_class=FileResponse)
def dashboard() -> FileResponse:
    """The dashboard page (统计看板); its data needs a viewer token (`?token=`)."""
    return _file(STATIC / "dashboard.html")


@router.get("/dashboard/static/{name:path}", response_class=FileResponse)
def dashboard_static(name: str) -> FileResponse:
    """A script, style or icon of the dashboard, shipped with the project."""
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "没有这个文件 / no such file")
    return _file(path)
