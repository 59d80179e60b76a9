"""Bearer tokens (访问令牌): signed JWTs naming an office, its roles and a department."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from shared.audit import acting, actor_of
from shared.contracts import Actor
from shared.settings import Settings

ROLES = ("clerk", "leader", "meetings", "supervisor", "department", "viewer", "admin")
READERS = frozenset(ROLES) - {"department"}
"""Roles that read their office's data (the prefecture's: every office's). A department user
reads only its own supervision cases."""


class Principal(BaseModel):
    """Who calls: a user of one office (政协) with some roles."""

    subject: str
    office: str
    roles: frozenset[str]
    department: str | None = None
    is_prefecture: bool = False

    def can_read(self, office: str) -> bool:
        """A county office reads its own data; the prefecture office reads everything."""
        return self.is_prefecture or office == self.office

    def actor(self, role: str | None = None) -> Actor:
        """This user as the actor of a command that `role` authorized (audit); with no role
        named, a token's only role is the one that authorized whatever it did."""
        if role is None and len(self.roles) == 1:
            (role,) = self.roles
        return actor_of(self.subject, self.office, self.roles, role, self.department)


class TokenError(ValueError):
    pass


class Authenticator:
    """Mints and verifies tokens with the keys from settings (the first key signs)."""

    algorithm = "HS256"
    cache_size = 4096

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # A user sends many requests with one token: checking its signature once is enough,
        # as long as the cached answer is not kept past the token's expiry.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def mint(
        self,
        office: str,
        roles: list[str],
        subject: str | None = None,
        department: str | None = None,
        ttl_seconds: int | None = None,
        audience: str | None = None,
    ) -> str:
        if office not in self._settings.offices:
            known = ", ".join(self._settings.offices)
            raise TokenError(f"未知的政协 / unknown office {office!r}; known: {known}")
        unknown = sorted(set(roles) - set(ROLES))
        if not roles or unknown:
            raise TokenError(
                f"未知的角色 / unknown role(s) {unknown or roles}; known: {', '.join(ROLES)}"
            )
        if "department" in roles and not department:
            raise TokenError("部门用户需要 --department / role department needs a department")
        now = int(time.time())
        claims = {
            "sub": subject or f"{office}-{uuid.uuid4().hex[:8]}",
            "office": office,
            "roles": sorted(set(roles)),
            "iss": self._settings.token_issuer,
            "aud": audience or self._settings.token_audience,
            "iat": now,
            "exp": now + (self._settings.token_ttl_seconds if ttl_seconds is None else ttl_seconds),
        }
        if department:
            claims["department"] = department
        return jwt.encode(claims, self._settings.signing_keys[0], algorithm=self.algorithm)

    @property
    def calendar_audience(self) -> str:
        """The audience of calendar tokens: not the services' own, so every route but the
        calendar feeds refuses them."""
        return f"{self._settings.token_audience}:calendar"

    def mint_calendar(self, office: str, subject: str, ttl_seconds: int | None = None) -> str:
        """A calendar subscription's token (日历订阅令牌): read-only, long-lived, and taken
        only by the calendar feeds (`verify_calendar`), since its URL is seen by calendar
        apps and proxies and outlives a working day."""
        ttl = self._settings.calendar_token_ttl_seconds if ttl_seconds is None else ttl_seconds
        return self.mint(
            office, ["viewer"], subject=subject, ttl_seconds=ttl, audience=self.calendar_audience
        )

    def verify_calendar(self, token: str) -> Principal:
        """A calendar token's reader; kept out of `verify`'s cache, which answers every
        other route."""
        return self._decode(token, self.calendar_audience)[0]

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None and cached[1] > time.time():
            self._verified.move_to_end(token)
            return cached[0]
        principal, expires = self._decode(token, self._settings.token_audience)
        self._verified[token] = (principal, expires)
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str, audience: str) -> tuple[Principal, float]:
        last_error: Exception | None = None
        for key in self._settings.signing_keys:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[self.algorithm],
                    audience=audience,
                    issuer=self._settings.token_issuer,
                    options={"require": ["exp", "iss", "aud", "sub"]},
                )
                break
            except jwt.InvalidSignatureError as error:
                last_error = error
            except jwt.PyJWTError as error:
                raise TokenError(str(error)) from error
        else:
            raise TokenError(str(last_error))
        office = claims.get("office")
        if office not in self._settings.offices:
            raise TokenError("token names no known office")
        roles = known_roles(claims.get("roles"))
        department = claims.get("department")
        if "department" in roles and not (isinstance(department, str) and department):
            raise TokenError("role department without a department")
        principal = Principal(
            subject=claims["sub"],
            office=office,
            roles=roles,
            department=department,
            is_prefecture=office == self._settings.prefecture_office,
        )
        return principal, float(claims["exp"])


def known_roles(claim: object) -> frozenset[str]:
    """The roles a token names, refused unless they are a non-empty list of known roles:
    a role no route knows must not pass a check that only asks for "any role" (a token
    with `roles: []` or `["root"]` once read every supervision case)."""
    if not isinstance(claim, list) or not claim:
        raise TokenError("token names no roles")
    unknown = sorted({str(role) for role in claim} - set(ROLES))
    if unknown or not all(isinstance(role, str) for role in claim):
        raise TokenError(f"token names unknown roles {unknown}")
    return frozenset(claim)


_bearer = HTTPBearer(auto_error=False, description="`shangliang token --office yanji --role clerk`")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "需要访问令牌 / a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal: Principal = request.app.state.authenticator.verify(credentials.credentials)
    except TokenError as error:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"访问令牌无效 / invalid token: {error}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from error
    # The request's commands record who did them; `require_role` adds which role allowed it.
    acting.set(principal.actor())
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(principal: Principal, role: str) -> None:
    """Refuse a caller without the role; otherwise the request's commands record that this
    role authorized them."""
    if role not in principal.roles:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"需要角色 {role} / this needs the role {role!r}"
        )
    acting.set(principal.actor(role))


def require_any_role(principal: Principal, roles: frozenset[str] | tuple[str, ...]) -> None:
    """Refuse a caller with none of the roles; otherwise the first of them it holds is the
    role that authorized the request's commands."""
    held = sorted(principal.roles & set(roles))
    if not held:
        named = ", ".join(sorted(roles))
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"需要角色 {named} 之一 / this needs one of the roles: {named}",
        )
    acting.set(principal.actor(held[0]))


async def reading_principal(principal: CurrentPrincipal) -> Principal:
    require_any_role(principal, READERS)
    return principal


Reader = Annotated[Principal, Depends(reading_principal)]
"""The caller, if it has a role that reads its office's data."""


NO_OFFICE = "没有这个政协的数据 / no such office"


def offices_to_read(principal: Principal, office: str | None) -> frozenset[str] | None:
    """The offices a list shows (None: all): a county its own, the prefecture any or one.

    Asking for an office one may not read is a 404, as for any other office's resource.
    """
    if office is not None:
        if not principal.can_read(office):
            raise HTTPException(status.HTTP_404_NOT_FOUND, NO_OFFICE)
        return frozenset({office})
    return None if principal.is_prefecture else frozenset({principal.office})
