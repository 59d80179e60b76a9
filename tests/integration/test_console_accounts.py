"""Workbench accounts and sessions (工作人员账号) on each store: SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest

from services.console.accounts import AccountError, Accounts, AccountStore, LoginRefused
from services.console.session import SessionInvalid, Sessions, csrf_matches
from shared.auth import Authenticator, TokenError
from shared.settings import Settings


def accounts_on(settings: Settings, **changes: int) -> Accounts:
    return Accounts(AccountStore(settings), settings, **changes)


def test_an_account_logs_in_only_with_its_password_stored_as_an_argon2_hash(
    store_settings: Settings,
) -> None:
    accounts = accounts_on(store_settings)
    accounts.add("clerk-li", "yanji", ["clerk"], "correct horse", None)
    stored = accounts.store.get("clerk-li")
    assert stored is not None and stored.password_hash.startswith("$argon2")
    assert "correct horse" not in stored.password_hash
    assert accounts.authenticate("clerk-li", "correct horse").roles == ("clerk",)
    with pytest.raises(LoginRefused, match="用户名或密码不正确"):
        accounts.authenticate("clerk-li", "wrong horse")
    with pytest.raises(LoginRefused, match="用户名或密码不正确"):
        accounts.authenticate("nobody", "correct horse")
    # A second store over the same database sees the same account (the CLI and the console).
    assert accounts_on(store_settings).store.get("clerk-li") == accounts.store.get("clerk-li")


def test_repeated_wrong_passwords_lock_the_account_until_a_reset(store_settings: Settings) -> None:
    accounts = accounts_on(store_settings, max_failed=3, lockout_seconds=600)
    accounts.add("leader-wang", "yanji", ["leader"], "right-password", None)
    for _ in range(3):
        with pytest.raises(LoginRefused):
            accounts.authenticate("leader-wang", "guess-guess")
    with pytest.raises(LoginRefused, match="已锁定"):
        accounts.authenticate("leader-wang", "right-password")
    accounts.reset_password("leader-wang", "another-password")
    assert accounts.authenticate("leader-wang", "another-password").name == "leader-wang"


def test_signing_out_ends_the_sessions_started_before(store_settings: Settings) -> None:
    accounts = accounts_on(store_settings)
    accounts.add("clerk-li", "yanji", ["clerk"], "right-password", None)
    sessions = Sessions(store_settings, ttl_seconds=600)
    before, _ = sessions.start("clerk-li")
    accounts.sign_out("clerk-li")
    after, _ = sessions.start("clerk-li")
    account = accounts.existing("clerk-li")
    assert account.sessions_valid_from > before.issued_at
    assert account.sessions_valid_from <= after.issued_at


def test_a_disabled_account_cannot_log_in(store_settings: Settings) -> None:
    accounts = accounts_on(store_settings)
    accounts.add("viewer-sun", "yanji", ["viewer"], "right-password", None)
    accounts.disable("viewer-sun")
    with pytest.raises(LoginRefused, match="停用"):
        accounts.authenticate("viewer-sun", "right-password")


@pytest.mark.parametrize(
    ("name", "office", "roles", "password", "department", "field"),
    [
        ("x", "yanji", ["clerk"], "long-enough", None, "name"),
        ("clerk-2", "nowhere", ["clerk"], "long-enough", None, "office"),
        ("clerk-2", "yanji", ["janitor"], "long-enough", None, "roles"),
        ("dept-2", "yanji", ["department"], "long-enough", None, "department"),
        ("clerk-2", "yanji", ["clerk"], "short", None, "password"),
    ],
)
def test_a_bad_account_is_refused_naming_the_field_and_nothing_is_stored(
    tmp_path, name, office, roles, password, department, field
) -> None:
    accounts = accounts_on(Settings(data_dir=tmp_path))
    with pytest.raises(AccountError) as refused:
        accounts.add(name, office, roles, password, department)
    assert refused.value.field == field and " / " in str(refused.value)
    assert accounts.store.all() == []


def test_changing_a_password_needs_the_current_one(tmp_path) -> None:
    accounts = accounts_on(Settings(data_dir=tmp_path))
    accounts.add("clerk-li", "yanji", ["clerk"], "first-password", None)
    with pytest.raises(AccountError) as refused:
        accounts.change_password("clerk-li", "not-it", "second-password")
    assert refused.value.field == "current"
    changed = accounts.change_password("clerk-li", "first-password", "second-password")
    assert changed.password_changed_at > 0
    assert accounts.authenticate("clerk-li", "second-password").name == "clerk-li"


def test_a_session_cookie_is_signed_expiring_and_not_a_service_token() -> None:
    settings = Settings()
    sessions = Sessions(settings, ttl_seconds=60)
    session, cookie = sessions.start("clerk-li")
    read = sessions.read(cookie)
    assert read.name == "clerk-li" and csrf_matches(read, session.csrf)
    assert not csrf_matches(read, "forged") and not csrf_matches(read, None)
    _, old = sessions.start("clerk-li", now=time.time() - 120)
    with pytest.raises(SessionInvalid) as expired:
        sessions.read(old)
    assert expired.value.expired
    with pytest.raises(SessionInvalid):
        sessions.read(cookie[:-2] + "xx")
    with pytest.raises(TokenError):
        Authenticator(settings).verify(cookie)  # a stolen cookie is no bearer token
    other = Sessions(Settings(signing_keys=["another-key-0123456789abcdef0123456789"]), 60)
    with pytest.raises(SessionInvalid):
        other.read(cookie)
