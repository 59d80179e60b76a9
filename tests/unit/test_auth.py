"""Bearer tokens (访问令牌): minted and verified with the keys from settings."""

from __future__ import annotations

import time

import jwt
import pytest
from pydantic import ValidationError

from shared.auth import Authenticator, TokenError
from shared.settings import DEV_SIGNING_KEY, Settings

OLD_KEY = "an-old-signing-key-of-at-least-32-characters"
NEW_KEY = "a-new-signing-key-of-at-least-32-characters!"


def authenticator(**settings: object) -> Authenticator:
    return Authenticator(Settings(**settings))  # type: ignore[arg-type]


def test_a_minted_token_verifies_as_its_office_roles_and_department() -> None:
    auth = authenticator()
    token = auth.mint(
        "yanji", ["clerk", "department"], subject="wang", department="城管局", ttl_seconds=60
    )

    principal = auth.verify(token)

    assert principal.subject == "wang"
    assert principal.office == "yanji"
    assert principal.roles == {"clerk", "department"}
    assert principal.department == "城管局"
    assert not principal.is_prefecture
    assert principal.can_read("yanji")
    assert not principal.can_read("tumen")


def test_a_prefecture_token_reads_every_office() -> None:
    auth = authenticator()
    principal = auth.verify(auth.mint("yanbian", ["viewer"]))

    assert principal.is_prefecture
    assert principal.can_read("tumen")


def test_an_expired_token_is_refused() -> None:
    auth = authenticator()
    token = auth.mint("yanji", ["clerk"], ttl_seconds=-10)

    with pytest.raises(TokenError, match="expired"):
        auth.verify(token)


def test_a_token_verified_once_is_refused_after_it_expires() -> None:
    auth = authenticator()
    token = auth.mint("yanji", ["clerk"], ttl_seconds=1)
    assert auth.verify(token).office == "yanji"  # now in the cache of verified tokens

    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    while time.time() <= expires:
        time.sleep(0.05)

    with pytest.raises(TokenError, match="expired"):
        auth.verify(token)


def test_a_token_for_another_audience_is_refused() -> None:
    token = authenticator(token_audience="another-system").mint("yanji", ["clerk"])

    with pytest.raises(TokenError, match=r"[Aa]udience"):
        authenticator().verify(token)


def test_a_token_from_another_issuer_is_refused() -> None:
    token = authenticator(token_issuer="someone-else").mint("yanji", ["clerk"])

    with pytest.raises(TokenError, match=r"[Ii]ssuer"):
        authenticator().verify(token)


def test_a_token_signed_with_an_unknown_key_is_refused() -> None:
    token = authenticator(signing_keys=[OLD_KEY]).mint("yanji", ["clerk"])

    with pytest.raises(TokenError, match=r"[Ss]ignature"):
        authenticator(signing_keys=[NEW_KEY]).verify(token)


def test_a_token_signed_with_the_previous_key_verifies_after_rotation() -> None:
    before = authenticator(signing_keys=[OLD_KEY])
    after = authenticator(signing_keys=[NEW_KEY, OLD_KEY])
    old_token = before.mint("tumen", ["leader"])

    assert after.verify(old_token).office == "tumen"
    new_token = after.mint("tumen", ["leader"])
    assert jwt.get_unverified_header(new_token)["alg"] == "HS256"
    with pytest.raises(TokenError):
        before.verify(new_token)


def test_an_expired_token_signed_with_the_second_key_is_still_refused() -> None:
    old_token = authenticator(signing_keys=[OLD_KEY]).mint("tumen", ["leader"], ttl_seconds=-10)

    with pytest.raises(TokenError, match="expired"):
        authenticator(signing_keys=[NEW_KEY, OLD_KEY]).verify(old_token)


def test_a_token_naming_an_office_that_is_not_configured_is_refused() -> None:
    now = int(time.time())
    claims = {"sub": "x", "office": "beijing", "roles": ["clerk"], "iss": "shangliang"}
    claims |= {"aud": "shangliang", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, DEV_SIGNING_KEY, algorithm="HS256")

    with pytest.raises(TokenError, match="office"):
        authenticator().verify(token)


def signed(claims: dict[str, object]) -> str:
    now = int(time.time())
    base = {"sub": "x", "office": "yanji", "iss": "shangliang", "aud": "shangliang"}
    return jwt.encode(base | {"iat": now, "exp": now + 60} | claims, DEV_SIGNING_KEY, "HS256")


@pytest.mark.parametrize(
    "roles", [[], ["root"], ["viewer", "root"], "viewer", None, [7], [["viewer"]]]
)
def test_a_signed_token_with_no_role_or_an_unknown_role_is_refused(roles: object) -> None:
    claims: dict[str, object] = {} if roles is None else {"roles": roles}
    with pytest.raises(TokenError, match="roles"):
        authenticator().verify(signed(claims))


def test_a_signed_department_token_without_a_department_is_refused() -> None:
    with pytest.raises(TokenError, match="department"):
        authenticator().verify(signed({"roles": ["department"]}))


def test_a_token_is_not_minted_for_an_unknown_office() -> None:
    with pytest.raises(TokenError, match="unknown office"):
        authenticator().mint("beijing", ["clerk"])


@pytest.mark.parametrize("roles", [["janitor"], ["clerk", "janitor"], []])
def test_a_token_is_not_minted_for_an_unknown_or_missing_role(roles: list[str]) -> None:
    with pytest.raises(TokenError, match="role"):
        authenticator().mint("yanji", roles)


def test_a_department_token_needs_a_department() -> None:
    with pytest.raises(TokenError, match="department"):
        authenticator().mint("yanji", ["department"])


def test_production_mode_refuses_the_placeholder_key() -> None:
    with pytest.raises(ValidationError, match="SHANGLIANG_SIGNING_KEYS"):
        Settings(mode="production")


def test_production_mode_refuses_a_short_key() -> None:
    with pytest.raises(ValidationError):
        Settings(mode="production", signing_keys=["too-short"])


def test_production_mode_refuses_the_placeholder_key_even_as_an_old_key() -> None:
    with pytest.raises(ValidationError):
        Settings(mode="production", signing_keys=[NEW_KEY, DEV_SIGNING_KEY])


def test_production_mode_accepts_real_keys() -> None:
    assert Settings(mode="production", signing_keys=[NEW_KEY, OLD_KEY]).mode == "production"


def test_a_calendar_token_is_long_lived_read_only_and_taken_only_as_a_calendar_token() -> None:
    auth = authenticator()
    token = auth.mint_calendar("yanji", "wang")

    principal = auth.verify_calendar(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (principal.office, principal.roles, principal.subject) == ("yanji", {"viewer"}, "wang")
    assert claims["exp"] - claims["iat"] >= 365 * 24 * 3600
    with pytest.raises(TokenError, match=r"(?i)audience"):
        auth.verify(token)
    with pytest.raises(TokenError, match=r"(?i)audience"):
        auth.verify_calendar(auth.mint("yanji", ["viewer"]))
