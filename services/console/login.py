"""Logging in and out, the password change page and the language switch (登录)."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from services.console.accounts import Account, AccountError, LoginRefused
from services.console.session import COOKIE
from services.console.web import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    Form,
    Refused,
    current_account,
    form_of,
    new_login_csrf,
    render,
)

log = logging.getLogger(__name__)
router = APIRouter()
EXPIRED = "登录已过期，请重新登录 / your session has expired: please log in again"
LoggedIn = Annotated[Account, Depends(current_account)]


def _safe_next(target: str | None) -> str:
    """Only a path on this site: a crafted link must not send a fresh login elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _set_session(request: Request, response: Response, name: str) -> None:
    settings = request.app.state.console_settings
    _, cookie = request.app.state.sessions.start(name)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        path="/",
    )


def _login_page(request: Request, form: Form, status_code: int = 200) -> Response:
    token = new_login_csrf()
    response = render(request, "login.html", status_code, form=form, login_csrf=token)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.app.state.console_settings.secure_cookies,
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/", expired: bool = False) -> Response:
    """The login page (登录)."""
    message = (
        "登录已过期，请重新登录 / your session has expired: please log in again"
        if expired
        else None
    )
    return _login_page(request, Form({"next": _safe_next(next)}, message=message))


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the name and password; a wrong one counts towards the lock-out."""
    form = await request.form()
    name = str(form.get("name", "")).strip()
    values = {"name": name, "next": _safe_next(str(form.get("next", "/")))}
    sent = str(form.get("csrf", ""))
    if not sent or sent != request.cookies.get(LOGIN_CSRF_COOKIE):
        raise Refused(
            403,
            "登录表单已失效，请刷新后重试 / the login form has expired: reload it and try again",
        )
    try:
        account = await run_in_threadpool(
            request.app.state.accounts.authenticate, name, str(form.get("password", ""))
        )
    except LoginRefused as refused:
        log.info("console: login refused for %r", name)
        return _login_page(request, Form(values, {"password": str(refused)}), 401)
    log.info("console: %s logged in", account.name)
    response = RedirectResponse(values["next"], status_code=303)
    _set_session(request, response, account.name)
    return response


@router.post("/logout")
async def logout(request: Request, account: LoggedIn) -> Response:
    """End the session (退出), on the server too: the cookie is no longer accepted."""
    await form_of(request)
    await run_in_threadpool(request.app.state.accounts.sign_out, account.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/password")
def password_form(request: Request, account: LoggedIn) -> Response:
    """The password change page (修改密码)."""
    return render(request, "password.html", form=Form())


@router.post("/password")
async def change_password(request: Request, account: LoggedIn) -> Response:
    """Change one's own password; other sessions of the account end."""
    form = await form_of(request)
    new, again = str(form.get("new", "")), str(form.get("again", ""))
    if new != again:
        errors = {"again": "两次输入的新密码不一致 / the two new passwords differ"}
        return render(request, "password.html", 422, form=Form({}, errors))
    try:
        await run_in_threadpool(
            request.app.state.accounts.change_password,
            account.name,
            str(form.get("current", "")),
            new,
        )
    except AccountError as error:
        return render(request, "password.html", 422, form=Form({}, {error.field: str(error)}))
    response = render(
        request, "password.html", form=Form(message="密码已修改 / the password was changed")
    )
    _set_session(request, response, account.name)
    return response


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, next: str = "/") -> Response:
    """中文 / English."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, "en" if lang == "en" else "zh", samesite="lax", path="/")
    return response
