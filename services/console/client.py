"""The console's one client of the four services (服务调用): one connection pool per service,
timeouts, the browser request's id passed on, and a short-lived token minted for the account."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from services.console.accounts import Account
from services.console.settings import ConsoleSettings
from shared.auth import Authenticator
from shared.observability import request_id
from shared.settings import Settings


@dataclass
class ApiError(Exception):
    """A service refused a call: its status, bilingual message, and per-field reasons."""

    status: int
    message: str
    fields: dict[str, str]

    def __str__(self) -> str:
        return self.message


UNREACHABLE = "服务暂时无法访问，请稍后再试 / the service cannot be reached, try again shortly"


def _refusal(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    fields: dict[str, str] = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        for item in detail:
            loc = [str(part) for part in item.get("loc", []) if part not in ("body", "query")]
            if loc:
                fields.setdefault(loc[0], str(item.get("msg", "")))
    return ApiError(response.status_code, str(message or response.reason_phrase), fields)


class ServiceClient:
    """Calls the services as one account; the answer's JSON, or `ApiError`."""

    def __init__(self, settings: Settings, console: ConsoleSettings) -> None:
        self._authenticator = Authenticator(settings)
        self._ttl = console.call_token_ttl_seconds
        timeout = httpx.Timeout(console.upstream_timeout_seconds, connect=3.0)
        self._pools = {
            name: httpx.AsyncClient(base_url=url, timeout=timeout)
            for name, url in console.service_urls().items()
        }
        self._tokens: dict[str, tuple[str, float]] = {}

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()

    def token(self, account: Account, roles: list[str] | None = None) -> str:
        """A token for the account (or some of its roles), reused until near its expiry."""
        wanted = sorted(roles or account.roles)
        key = f"{account.name}|{account.office}|{','.join(wanted)}|{account.department}"
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.time() + 30:
            return cached[0]
        minted = self._authenticator.mint(
            account.office,
            wanted,
            subject=account.name,
            department=account.department,
            ttl_seconds=self._ttl,
        )
        self._tokens[key] = (minted, time.time() + self._ttl)
        return minted

    async def call(
        self,
        account: Account,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        files: Any = None,
        raw: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        headers = {**(headers or {}), "Authorization": f"Bearer {self.token(account)}"}
        if (rid := request_id.get()) is not None:
            headers["X-Request-Id"] = rid
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = await self._pools[service].request(
                method, path, json=json, params=clean, files=files, headers=headers
            )
        except httpx.HTTPError as error:
            raise ApiError(503, UNREACHABLE, {}) from error
        if response.status_code >= 400:
            raise _refusal(response)
        return response if raw else response.json()

    async def get(self, account: Account, service: str, path: str, **params: Any) -> Any:
        return await self.call(account, service, "GET", path, params=params)

    async def post(
        self,
        account: Account,
        service: str,
        path: str,
        body: Any,
        idempotency_key: str | None = None,
    ) -> Any:
        """A write; with `idempotency_key`, a resent form is carried out once."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self.call(account, service, "POST", path, json=body, headers=headers)

    def calendar_token(self, account: Account) -> str:
        """The token of a calendar subscription URL: long-lived, and refused by every route
        but the calendar feeds."""
        return self._authenticator.mint_calendar(account.office, account.name)

    def viewer_token(self, account: Account) -> str:
        """A read-only token for the dashboard link (the dashboard takes only a token)."""
        return self._authenticator.mint(
            account.office, ["viewer"], subject=account.name, ttl_seconds=3600
        )
