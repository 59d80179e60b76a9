"""Sessions and CSRF tokens (会话): a signed, expiring cookie naming the account, checked on
every request against the account store (a disabled account or a changed password ends it)."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from shared.settings import Settings

COOKIE = "shangliang_session"
AUDIENCE = "shangliang-console-session"
"""Not the services' audience: a session cookie is never accepted as a bearer token."""


class SessionInvalid(Exception):
    """No session, a forged one, or one that has expired (`expired` says which)."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


@dataclass(frozen=True)
class Session:
    """一次登录: who is logged in, since when, and the CSRF token of their forms."""

    name: str
    csrf: str
    issued_at: float
    expires_at: float


class Sessions:
    """Signs and reads session cookies with the services' signing keys (the first signs)."""

    def __init__(self, settings: Settings, ttl_seconds: int) -> None:
        self._keys = settings.signing_keys
        self._issuer = settings.token_issuer
        self.ttl_seconds = ttl_seconds

    def start(self, name: str, now: float | None = None) -> tuple[Session, str]:
        issued = time.time() if now is None else now
        session = Session(name, secrets.token_urlsafe(24), issued, issued + self.ttl_seconds)
        claims = {
            "sub": name,
            "csrf": session.csrf,
            "iat": issued,
            "exp": int(session.expires_at),
            "iss": self._issuer,
            "aud": AUDIENCE,
        }
        return session, jwt.encode(claims, self._keys[0], algorithm="HS256")

    def read(self, cookie: str | None) -> Session:
        if not cookie:
            raise SessionInvalid(expired=False)
        for key in self._keys:
            try:
                claims = jwt.decode(
                    cookie,
                    key,
                    algorithms=["HS256"],
                    audience=AUDIENCE,
                    issuer=self._issuer,
                    options={"require": ["exp", "iat", "sub"]},
                )
            except jwt.ExpiredSignatureError as error:
                raise SessionInvalid(expired=True) from error
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as error:
                raise SessionInvalid(expired=False) from error
            return Session(claims["sub"], claims["csrf"], claims["iat"], claims["exp"])
        raise SessionInvalid(expired=False)


def csrf_matches(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")
