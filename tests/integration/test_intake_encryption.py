"""Reporters' names and phone numbers (个人信息) are encrypted at rest in intake's SQLite file."""

from __future__ import annotations

import asyncio
import stat
from datetime import datetime
from pathlib import Path

import pytest
from eventsourcing.cryptography import AESCipher
from pydantic import SecretStr

from services.intake.application import IntakeApplication
from services.intake.domain import issue_id_for
from services.intake.settings import (
    KEY_FILE,
    IntakeConfigurationError,
    IntakeSettings,
    cipher_environment,
)
from shared.settings import Settings

PHONE = "13912345678"
NAME = "王秀英"


async def store_reported_issue(app: IntakeApplication) -> None:
    group_commit = asyncio.create_task(app.group_commit.run())
    try:
        await app.submit_issue(
            "yanji",
            "楼道灯损坏",
            "反映人称楼道灯坏了一个月",
            "物业管理",
            datetime.fromisoformat("2020-06-04T15:30:00+08:00"),
            idempotency_key="encrypted-1",
            reporter_name=NAME,
            reporter_phone=PHONE,
        )
    finally:
        group_commit.cancel()
        await asyncio.gather(group_commit, return_exceptions=True)


def stored_bytes(folder: Path) -> bytes:
    """Everything SQLite wrote: the database and its write-ahead log."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("intake.sqlite*")))


def open_app(settings: Settings) -> IntakeApplication:
    env = {
        **settings.event_store_env("intake"),
        **cipher_environment(settings, IntakeSettings()),
    }
    return IntakeApplication(env=env)


async def test_the_sqlite_file_holds_no_plaintext_phone_number_or_name(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    app = open_app(settings)
    await store_reported_issue(app)
    app.close()

    stored = stored_bytes(tmp_path)
    assert stored, "the event store wrote nothing"
    for secret in (PHONE, NAME):
        assert secret.encode() not in stored
        assert secret.encode("unicode_escape") not in stored  # JSON escapes non-ASCII

    reopened = open_app(settings)
    issue = reopened.get_issue(issue_id_for("yanji", "encrypted-1"))
    assert (issue.reporter_name, issue.reporter_phone) == (NAME, PHONE)
    reopened.close()


async def test_without_the_cipher_the_phone_number_would_be_in_the_file(tmp_path: Path) -> None:
    """The check above can fail: the same issue stored without a key shows the number."""
    app = IntakeApplication(env=Settings(data_dir=tmp_path).event_store_env("intake"))
    await store_reported_issue(app)
    app.close()

    assert PHONE.encode() in stored_bytes(tmp_path)


def test_the_embedded_key_is_generated_once_apart_from_the_data_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    first = cipher_environment(settings, IntakeSettings())
    again = cipher_environment(settings, IntakeSettings())

    assert first == again
    assert first["CIPHER_TOPIC"] == "eventsourcing.cryptography:AESCipher"
    key = tmp_path / "data-keys" / KEY_FILE
    assert key.read_text().strip() == first["CIPHER_KEY"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert not (tmp_path / "data" / KEY_FILE).exists()


def test_a_key_an_older_version_kept_in_the_data_folder_moves_out_unchanged(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    old = settings.data_file(KEY_FILE)
    old.write_text(AESCipher.create_key(32) + "\n")
    key = old.read_text().strip()

    assert cipher_environment(settings, IntakeSettings())["CIPHER_KEY"] == key
    assert not old.exists()
    assert (tmp_path / "data-keys" / KEY_FILE).read_text().strip() == key


def test_a_configured_key_file_is_read_in_production_but_never_inside_the_data_folder(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", mode="production", signing_keys=["k" * 40])
    key = AESCipher.create_key(32)
    apart = tmp_path / "secrets" / KEY_FILE
    apart.parent.mkdir()
    apart.write_text(key + "\n")
    inside = settings.data_file("keys") / KEY_FILE
    inside.parent.mkdir()
    inside.write_text(key + "\n")

    configured = IntakeSettings(cipher_key_file=apart)
    assert cipher_environment(settings, configured)["CIPHER_KEY"] == key
    with pytest.raises(IntakeConfigurationError, match="inside the data folder"):
        cipher_environment(settings, IntakeSettings(cipher_key_file=inside))
    missing = IntakeSettings(cipher_key_file=tmp_path / "nowhere" / KEY_FILE)
    with pytest.raises(IntakeConfigurationError, match="cannot read"):
        cipher_environment(settings, missing)


def test_production_mode_without_a_key_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", mode="production", signing_keys=["k" * 40])

    with pytest.raises(IntakeConfigurationError, match="SHANGLIANG_INTAKE_CIPHER_KEY"):
        cipher_environment(settings, IntakeSettings())
    assert list(tmp_path.rglob(KEY_FILE)) == []

    configured = IntakeSettings(cipher_key=SecretStr("not a key"))
    with pytest.raises(IntakeConfigurationError, match="not a valid AES key"):
        cipher_environment(settings, configured)


def test_a_configured_key_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = AESCipher.create_key(32)
    monkeypatch.setenv("SHANGLIANG_INTAKE_CIPHER_KEY", key)
    settings = Settings(data_dir=tmp_path, mode="production", signing_keys=["k" * 40])

    assert cipher_environment(settings, IntakeSettings())["CIPHER_KEY"] == key
