"""Intake's own settings (问题收集配置): categories per office and the key for personal data."""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Literal

from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.intake.domain import DEFAULT_CATEGORIES
from shared.files import private_dir
from shared.settings import ServiceSettings, Settings

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


class IntakeSettings(ServiceSettings):
    """`SHANGLIANG_INTAKE_*`: where intake listens, plus what only intake needs."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_INTAKE_", extra="ignore")

    port: int = 8101

    cipher_key: SecretStr | None = None
    """AES key (base64, from `AESCipher.create_key(32)`) for the event store: reporters'
    names and phone numbers are personal data. Read from `cipher_key_file` if not set."""
    cipher_key_file: Path | None = None
    """Where the key is kept, apart from the data folder so that a copy of the folder alone
    decrypts nothing: by default `<data folder>-keys/intake.cipher-key` beside it, generated
    there (0600, in a 0700 folder) in the embedded default. Production mode only reads it,
    and refuses a file inside the data folder."""
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


def key_file(settings: Settings, intake: IntakeSettings) -> Path:
    """Where the cipher key is kept: the configured file, or one beside the data folder."""
    if intake.cipher_key_file is not None:
        return intake.cipher_key_file
    data = settings.data_dir.resolve()
    return data.parent / f"{data.name}-keys" / KEY_FILE


def cipher_environment(settings: Settings, intake: IntakeSettings) -> dict[str, str]:
    """The eventsourcing cipher settings: the configured key or key file, or in the embedded
    default one generated once beside the data folder (readable by its owner only)."""
    if intake.cipher_key is not None:
        key = intake.cipher_key.get_secret_value()
    elif settings.mode == "production":
        key = _production_key(settings, intake)
    else:
        # Versions before kept the key in the data folder: it moves out, the same key.
        key = _key_from_file(key_file(settings, intake), settings.data_dir / KEY_FILE)
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


def _production_key(settings: Settings, intake: IntakeSettings) -> str:
    path = intake.cipher_key_file
    if path is None:
        raise IntakeConfigurationError(
            "生产模式需要设置 SHANGLIANG_INTAKE_CIPHER_KEY 或 SHANGLIANG_INTAKE_CIPHER_KEY_FILE"
            "（加密反映人信息）/ production mode needs SHANGLIANG_INTAKE_CIPHER_KEY or "
            "SHANGLIANG_INTAKE_CIPHER_KEY_FILE to encrypt reporters' personal data; create a "
            "key with: python -c 'from eventsourcing.cryptography import AESCipher; "
            "print(AESCipher.create_key(32))'"
        )
    if path.resolve().is_relative_to(settings.data_dir.resolve()):
        raise IntakeConfigurationError(
            f"密钥文件 {path} 不能放在数据目录 {settings.data_dir} 中 / the cipher key file must "
            "not be inside the data folder: a copy of the folder would decrypt itself"
        )
    try:
        return path.read_text().strip()
    except OSError as error:
        raise IntakeConfigurationError(
            f"无法读取密钥文件 / cannot read SHANGLIANG_INTAKE_CIPHER_KEY_FILE {path}: {error}"
        ) from error


def _key_from_file(path: Path, legacy: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    if legacy.exists():
        # FileNotFoundError: moved by another process starting at the same time.
        with contextlib.suppress(FileNotFoundError):
            shutil.move(legacy, path)
        return path.read_text().strip()
    key = AESCipher.create_key(32)
    try:
        # O_EXCL: of two processes starting at once, one writes and the other reads its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key
