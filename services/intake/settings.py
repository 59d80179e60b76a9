"""Intake's own settings (问题收集配置): categories per office and the key for personal data."""

from __future__ import annotations

import binascii
import hashlib
import os
from pathlib import Path
from typing import Literal

from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.intake.domain import DEFAULT_CATEGORIES
from shared.settings import IntakeSettings, Settings

CIPHER_TOPIC = "eventsourcing.cryptography:AESCipher"
KEY_FILE = "intake.cipher-key"


class IntakeConfigurationError(RuntimeError):
    """Intake cannot start with this configuration; the message is meant for the operator."""


class Open311Value(BaseModel):
    key: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=100)


class Open311Attribute(BaseModel):
    """One typed attribute of a GeoReport v2 service definition, in the spec's fields."""

    variable: bool = True
    code: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,40}$")
    datatype: Literal[
        "string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"
    ] = "string"
    required: bool = False
    datatype_description: str = ""
    order: int = 1
    description: str = Field(min_length=1, max_length=200)
    values: list[Open311Value] = Field(default_factory=list)


class IntakeServiceSettings(IntakeSettings):
    """`SHANGLIANG_INTAKE_*`: where intake listens, plus what only intake needs."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_INTAKE_", extra="ignore")

    cipher_key: SecretStr | None = None
    """AES key (base64, from `AESCipher.create_key(32)`) for the event store: reporters'
    names and phone numbers are personal data. Generated into the data folder by default."""
    categories: dict[str, list[str]] = Field(default_factory=dict)
    """Issue categories per office, e.g. `{"yanji": ["城市管理", ...]}`; others get the
    default list."""

    callback_working_days: int = Field(default=5, ge=1, le=60)
    """回访: a resolved issue not called back within this many working days is due."""
    open311_attributes: dict[str, dict[str, list[Open311Attribute]]] = Field(default_factory=dict)
    """Open311 attributes per office and category, e.g. `{"yanji": {"城市管理": [{"code":
    "lamp", "datatype": "string", "description": "路灯编号", "required": false}]}}`."""

    def categories_of(self, office: str) -> tuple[str, ...]:
        return tuple(self.categories.get(office) or DEFAULT_CATEGORIES)


def cipher_environment(settings: Settings, intake: IntakeServiceSettings) -> dict[str, str]:
    """The eventsourcing cipher settings: the configured key, or in the embedded default one
    generated once into the data folder (readable by its owner only)."""
    if intake.cipher_key is not None:
        key = intake.cipher_key.get_secret_value()
    elif settings.mode == "production":
        raise IntakeConfigurationError(
            "生产模式需要设置 SHANGLIANG_INTAKE_CIPHER_KEY（加密反映人信息）/ production mode "
            "needs SHANGLIANG_INTAKE_CIPHER_KEY to encrypt reporters' personal data; create one "
            "with: python -c 'from eventsourcing.cryptography import AESCipher; "
            "print(AESCipher.create_key(32))'"
        )
    else:
        key = _key_from_file(settings.data_file(KEY_FILE))
    try:
        AESCipher(Environment(env={AESCipher.CIPHER_KEY: key}))
    except (ValueError, binascii.Error) as error:
        raise IntakeConfigurationError(
            f"SHANGLIANG_INTAKE_CIPHER_KEY 无效 / is not a valid AES key: {error}"
        ) from error
    return {"CIPHER_TOPIC": CIPHER_TOPIC, "CIPHER_KEY": key}


def tracking_secret(cipher: dict[str, str]) -> bytes:
    """The tracking codes' secret, derived from the personal-data key: as stable as it, and
    one secret fewer to configure."""
    return hashlib.sha256(b"shangliang:tracking-code:" + cipher["CIPHER_KEY"].encode()).digest()


def _key_from_file(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = AESCipher.create_key(32)
    try:
        # O_EXCL: of two processes starting at once, one writes and the other reads its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key
