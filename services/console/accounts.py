"""Staff accounts (工作人员账号): who may log in to the workbench, with which office and roles.

The store is one small table, in SQLite by default and in PostgreSQL with
`SHANGLIANG_EVENT_STORE=postgres`, like everything else. Passwords are kept only as argon2
hashes. `PasswordLogin` is the one way in today; an external identity provider (OIDC) would be
another `IdentityProvider` answering the same `Account`.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.auth import ROLES
from shared.files import private_file
from shared.settings import Settings
from shared.views import PortableCursor, sends_sql

NAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
MIN_PASSWORD = 8
TABLE = "console_accounts"
COLUMNS = (
    "name",
    "office",
    "roles",
    "department",
    "password_hash",
    "disabled",
    "failed_logins",
    "locked_until",
    "password_changed_at",
    "signed_out_at",
)
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, office TEXT NOT NULL, roles "
    "TEXT NOT NULL, department TEXT, password_hash TEXT NOT NULL, disabled INTEGER NOT NULL "
    "DEFAULT 0, failed_logins INTEGER NOT NULL DEFAULT 0, locked_until DOUBLE PRECISION NOT "
    "NULL DEFAULT 0, password_changed_at DOUBLE PRECISION NOT NULL DEFAULT 0, signed_out_at "
    "DOUBLE PRECISION NOT NULL DEFAULT 0)"
)
SELECT_ONE = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE name = ?"
SELECT_ALL = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY office, name"
INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (name) DO NOTHING"
)
UPDATE = (
    f"UPDATE {TABLE} SET "
    + ", ".join(f"{column} = ?" for column in COLUMNS[1:])
    + " WHERE name = ?"
)


@sends_sql
def _statements() -> Iterator[str]:
    yield from (CREATE_TABLE, SELECT_ONE, SELECT_ALL, INSERT, UPDATE)


class AccountError(ValueError):
    """A refused account change; `field` names what was wrong, the message is bilingual."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class LoginRefused(Exception):
    """Wrong name or password, a disabled or a locked account: the message says which, except
    that an unknown name and a wrong password read the same (names are not disclosed)."""


@dataclass(frozen=True)
class Account:
    """一名工作人员: a person who logs in, of one office, with roles (and a department)."""

    name: str
    office: str
    roles: tuple[str, ...]
    department: str | None
    password_hash: str
    disabled: bool = False
    failed_logins: int = 0
    locked_until: float = 0.0
    password_changed_at: float = 0.0
    signed_out_at: float = 0.0

    @property
    def sessions_valid_from(self) -> float:
        """Sessions started before this have ended: a password change or a log-out."""
        return max(self.password_changed_at, self.signed_out_at)


class AccountStore:
    """The accounts table, on SQLite or PostgreSQL; every method is one short transaction."""

    def __init__(self, settings: Settings) -> None:
        self._postgres = settings.event_store == "postgres"
        self._settings = settings
        if not self._postgres:
            # Password hashes: owner-only like every store.
            self._path = private_file(settings.data_file("console.sqlite"))
        self._create()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self._postgres:
            s = self._settings
            with (
                psycopg.connect(
                    host=s.postgres_host,
                    port=s.postgres_port,
                    user=s.postgres_user,
                    password=s.postgres_password,
                    dbname=s.postgres_dbname,
                    connect_timeout=10,
                    options=f"-c search_path={s.postgres_schema}",
                ) as connection,
                connection.cursor() as cursor,
            ):
                yield PortableCursor(cursor)
        else:
            connection = sqlite3.connect(self._path, timeout=10)
            try:
                with connection:
                    yield connection.cursor()
            finally:
                connection.close()

    def _create(self) -> None:
        with self._cursor() as c:
            c.execute(CREATE_TABLE)

    def get(self, name: str) -> Account | None:
        with self._cursor() as c:
            c.execute(SELECT_ONE, (name,))
            row = c.fetchone()
        return None if row is None else _account(row)

    def all(self) -> list[Account]:
        with self._cursor() as c:
            c.execute(SELECT_ALL)
            return [_account(row) for row in c.fetchall()]

    def add(self, account: Account) -> bool:
        """Store a new account; False if the name is taken (nothing changed)."""
        with self._cursor() as c:
            c.execute(INSERT, _row(account))
            return bool(c.rowcount)

    def save(self, account: Account) -> None:
        with self._cursor() as c:
            c.execute(UPDATE, (*_row(account)[1:], account.name))


def _row(account: Account) -> tuple[Any, ...]:
    return (
        account.name,
        account.office,
        ",".join(account.roles),
        account.department,
        account.password_hash,
        int(account.disabled),
        account.failed_logins,
        account.locked_until,
        account.password_changed_at,
        account.signed_out_at,
    )


def _account(row: Any) -> Account:
    name, office, roles, department, password_hash, disabled, failed, locked, changed, out = row
    return Account(
        name=name,
        office=office,
        roles=tuple(r for r in roles.split(",") if r),
        department=department,
        password_hash=password_hash,
        disabled=bool(disabled),
        failed_logins=int(failed),
        locked_until=float(locked),
        password_changed_at=float(changed),
        signed_out_at=float(out),
    )


class IdentityProvider(Protocol):
    """How a person proves who they are; OIDC would be a second implementation."""

    def authenticate(self, name: str, password: str) -> Account: ...


class Accounts:
    """Adding, checking and changing accounts over one store (the CLI and the console); the
    identity provider of today (user name and password)."""

    def __init__(
        self,
        store: AccountStore,
        settings: Settings,
        max_failed: int = 5,
        lockout_seconds: int = 300,
    ) -> None:
        self.store = store
        self._settings = settings
        self._hasher = PasswordHasher()
        self._max_failed = max_failed
        self._lockout = lockout_seconds

    def add(
        self, name: str, office: str, roles: list[str], password: str, department: str | None
    ) -> Account:
        if not NAME.match(name):
            raise AccountError(
                "name",
                "用户名须为 2–64 个字母、数字或 _.@- / the name must be 2-64 letters, "
                "digits or _.@-",
            )
        if office not in self._settings.offices:
            raise AccountError(
                "office",
                f"未知的政协 / unknown office {office!r}; known: "
                + ", ".join(self._settings.offices),
            )
        unknown = sorted(set(roles) - set(ROLES))
        if not roles or unknown:
            raise AccountError(
                "roles",
                f"未知的角色 / unknown role(s) {unknown or roles}; known: {', '.join(ROLES)}",
            )
        if ("department" in roles) != bool(department):
            raise AccountError(
                "department",
                "部门用户需要且只有部门用户需要承办单位 / a department user, and only one, names "
                "its department",
            )
        self._check_password(password)
        account = Account(
            name=name,
            office=office,
            roles=tuple(sorted(set(roles))),
            department=department or None,
            password_hash=self._hasher.hash(password),
            password_changed_at=time.time(),
        )
        if not self.store.add(account):
            raise AccountError("name", f"用户名已存在 / the name {name!r} is taken")
        return account

    def _check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(
                "password",
                f"密码至少 {MIN_PASSWORD} 个字符 / the password needs {MIN_PASSWORD}+ characters",
            )

    def existing(self, name: str) -> Account:
        account = self.store.get(name)
        if account is None:
            raise AccountError("name", f"没有这个用户 / no account {name!r}")
        return account

    def disable(self, name: str) -> Account:
        account = replace(self.existing(name), disabled=True)
        self.store.save(account)
        return account

    def sign_out(self, name: str) -> None:
        """End every session of the account (a cookie copied elsewhere stops working too)."""
        self.store.save(replace(self.existing(name), signed_out_at=time.time()))

    def reset_password(self, name: str, password: str) -> Account:
        """A new password set by an administrator; it also lifts a lock-out."""
        self._check_password(password)
        account = replace(
            self.existing(name),
            password_hash=self._hasher.hash(password),
            failed_logins=0,
            locked_until=0.0,
            password_changed_at=time.time(),
        )
        self.store.save(account)
        return account

    def change_password(self, name: str, current: str, new: str) -> Account:
        account = self.existing(name)
        if not self._matches(account, current):
            raise AccountError("current", "当前密码不正确 / the current password is wrong")
        if new == current:
            raise AccountError("new", "新密码须与当前密码不同 / the new password must differ")
        return self.reset_password(name, new)

    def _matches(self, account: Account, password: str) -> bool:
        try:
            return self._hasher.verify(account.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def authenticate(self, name: str, password: str) -> Account:
        """The account if the password is right; each wrong one counts, and after
        `max_failed` in a row the account is locked for a while (against guessing)."""
        account = self.store.get(name)
        if account is None:
            # As slow as a real check, so that timing does not tell which names exist.
            self._hasher.verify(self._hasher.hash("not-an-account"), "not-an-account")
            raise LoginRefused("用户名或密码不正确 / wrong user name or password")
        now = time.time()
        if account.locked_until > now:
            minutes = max(1, round((account.locked_until - now) / 60))
            raise LoginRefused(
                f"连续输错密码，账号已锁定，请 {minutes} 分钟后再试 / too many wrong passwords: "
                f"the account is locked, try again in {minutes} min"
            )
        if not self._matches(account, password):
            failed = account.failed_logins + 1
            locked = now + self._lockout if failed >= self._max_failed else 0.0
            self.store.save(
                replace(account, failed_logins=0 if locked else failed, locked_until=locked)
            )
            raise LoginRefused("用户名或密码不正确 / wrong user name or password")
        if account.disabled:
            raise LoginRefused("账号已停用 / this account is disabled")
        if account.failed_logins or account.locked_until:
            account = replace(account, failed_logins=0, locked_until=0.0)
            self.store.save(account)
        return account
