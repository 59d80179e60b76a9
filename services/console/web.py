"""What every console page shares (页面): templates in Chinese or English, the logged-in
account, CSRF checks on every form, refusal pages, and answering a write."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.console.accounts import Account
from services.console.client import ApiError, ServiceClient
from services.console.session import COOKIE, SessionInvalid, csrf_matches

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
LANG_COOKIE = "shangliang_lang"
LOGIN_CSRF_COOKIE = "shangliang_login_csrf"

# Nothing is loaded from elsewhere; htmx needs no eval. Forms post only back here.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class NotLoggedIn(Exception):
    def __init__(self, expired: bool) -> None:
        self.expired = expired


class Refused(Exception):
    """A page the account may not see or a form it may not send: a clear page, nothing done."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


@dataclass
class Form:
    """What the user typed, and the API's refusal by field, to show the form again."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    ok: bool = True

    @classmethod
    def refused(cls, values: dict[str, Any], error: ApiError, field: str | None = None) -> Form:
        """The form again with the API's reasons by field; a refusal naming no field (a 409:
        a conflict, a state) goes next to `field`, the one it is about."""
        fields = dict(error.fields)
        if not fields and field is not None:
            fields[field] = error.message
        return cls(values, fields, error.message, ok=False)


def lang_of(request: Request) -> str:
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"


def client(request: Request) -> ServiceClient:
    return request.app.state.client


async def current_account(request: Request) -> Account:
    """The logged-in account, or `NotLoggedIn`; checked against the store on each request so
    that disabling an account, changing its password or logging out ends its sessions."""
    try:
        session = request.app.state.sessions.read(request.cookies.get(COOKIE))
    except SessionInvalid as error:
        raise NotLoggedIn(error.expired) from error
    account = request.app.state.accounts.store.get(session.name)
    if account is None or account.disabled or account.sessions_valid_from > session.issued_at:
        raise NotLoggedIn(expired=False)
    request.state.session = session
    request.state.account = account
    return account


def require(account: Account, *roles: str) -> None:
    if not set(roles) & set(account.roles):
        raise Refused(
            403,
            "您的账号没有使用这个页面的角色 / your account has no role for this page "
            f"({', '.join(roles)})",
        )


async def form_of(request: Request) -> dict[str, Any]:
    """The posted form, after checking its CSRF token against the session's."""
    form = await request.form()
    session = request.state.session
    if not csrf_matches(session, str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token")):
        raise Refused(
            403,
            "表单已失效（缺少或错误的安全令牌），请刷新页面后重试；未做任何更改 / the form has "
            "expired (missing or wrong CSRF token): reload the page and try again; nothing "
            "was changed",
        )
    return {k: form.getlist(k) if len(form.getlist(k)) > 1 else form.get(k) for k in form}


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    lang = lang_of(request)

    def t(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    session = getattr(request.state, "session", None)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "lang": lang,
            "account": getattr(request.state, "account", None),
            "csrf": session.csrf if session else "",
            "path": request.url.path,
            "query": str(request.url.query),
            **context,
        },
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    return response


def written(request: Request, url: str) -> Response:
    """After a write: go to the page that shows its result (htmx follows without a reload)."""
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Location": url, **SECURITY_HEADERS})
    return RedirectResponse(url, status_code=303)


def login_url(request: Request, expired: bool) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target)}" + ("&expired=1" if expired else "")


def not_logged_in(request: Request, error: Exception) -> Response:
    assert isinstance(error, NotLoggedIn)
    url = login_url(request, error.expired)
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def refused_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, Refused)
    return render(request, "refused.html", error.status, message=error.message, code=error.status)


def api_refused_page(request: Request, error: Exception) -> Response:
    """A page whose reading the API refused: 404 for another office's or department's item."""
    assert isinstance(error, ApiError)
    if error.status == 404:
        message = (
            "找不到这条记录，或者您无权查看 / not found, or not yours to see: " + error.message
        )
    else:
        message = error.message
    return render(request, "refused.html", error.status, message=message, code=error.status)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
