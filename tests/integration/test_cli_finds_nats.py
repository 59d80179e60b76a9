"""The NATS commands run by hand (`shangliang projections …`) find the embedded nats-server of
their data folder, send its passwords nowhere else, and answer a refusal in words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.embedded import EmbeddedNats, passwords_from_file
from shared.settings import Settings
from tools.launcher import PASSWORDS_FILE

ROOT = Path(__file__).resolve().parents[2]


def run_cli(data_dir: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SHANGLIANG_")}
    environment |= {"SHANGLIANG_DATA_DIR": str(data_dir), **variables}
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def embedded_server(data_dir: Path, streams: bool) -> EmbeddedNats:
    """The nats-server a `shangliang up` on `data_dir` runs: its users, its passwords."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedNats(
        data_dir / "nats", passwords=passwords_from_file(data_dir / PASSWORDS_FILE)
    )
    server.start()
    if streams:
        server.set_up_blocking(Settings(data_dir=data_dir))
    return server


@pytest.fixture
def set_up_server(data_dir: Path) -> Iterator[EmbeddedNats]:
    server = embedded_server(data_dir, streams=True)
    yield server
    server.stop()


@pytest.fixture
def bare_server(data_dir: Path) -> Iterator[EmbeddedNats]:
    server = embedded_server(data_dir, streams=False)
    yield server
    server.stop()


def test_rebuild_and_check_reach_the_embedded_server_named_by_the_data_folder_and_port(
    data_dir: Path, set_up_server: EmbeddedNats
) -> None:
    port = str(set_up_server.port)
    rebuilt = run_cli(data_dir, "projections", "rebuild", SHANGLIANG_EMBEDDED_NATS_PORT=port)
    assert rebuilt.returncode == 0, rebuilt.stderr
    checked = run_cli(data_dir, "projections", "check", SHANGLIANG_EMBEDDED_NATS_PORT=port)
    assert checked.returncode == 0, checked.stderr
    assert "一致 / equal" in checked.stdout


def test_a_missing_stream_is_answered_in_words_with_exit_2(
    data_dir: Path, bare_server: EmbeddedNats
) -> None:
    """Another server than the one the view was built from, say: it has none of the streams."""
    port = str(bare_server.port)
    # A stream not yet created is an empty one to a rebuild (no service has published yet).
    rebuilt = run_cli(data_dir, "projections", "rebuild", SHANGLIANG_EMBEDDED_NATS_PORT=port)
    assert rebuilt.returncode == 0, rebuilt.stderr
    result = run_cli(data_dir, "projections", "check", SHANGLIANG_EMBEDDED_NATS_PORT=port)
    assert result.returncode == 2, result.stderr
    assert "没有所需的事件流" in result.stderr and "a stream is missing" in result.stderr
    assert bare_server.url in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_login_is_answered_in_words_with_exit_2(
    data_dir: Path, set_up_server: EmbeddedNats
) -> None:
    passwords = json.loads((data_dir / PASSWORDS_FILE).read_text())
    (data_dir / PASSWORDS_FILE).write_text(json.dumps(passwords | {"projections": "pwrong"}))
    port = str(set_up_server.port)
    result = run_cli(data_dir, "projections", "check", SHANGLIANG_EMBEDDED_NATS_PORT=port)
    assert result.returncode == 2, result.stderr
    assert "拒绝了用户 projections 的登录" in result.stderr
    assert "refused the login of user projections" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_data_folders_password_is_not_sent_to_a_server_it_does_not_belong_to(
    data_dir: Path, set_up_server: EmbeddedNats, tmp_path: Path
) -> None:
    """A configured URL that is not the data folder's server gets no password of that folder:
    the other server, which knows the projections user by another password, sees an
    anonymous login, which it refuses."""
    other = EmbeddedNats(
        tmp_path / "other",
        passwords={user: "pother" for user in passwords_from_file(data_dir / PASSWORDS_FILE)},
    ).start()
    try:
        result = run_cli(
            data_dir,
            "projections",
            "check",
            SHANGLIANG_NATS_URL=other.url,
            SHANGLIANG_EMBEDDED_NATS_PORT=str(set_up_server.port),
        )
    finally:
        other.stop()
    assert result.returncode == 2, result.stderr
    assert "refused the login of user (anonymous)" in result.stderr


def test_a_data_folder_whose_stack_is_not_running_is_refused_without_guessing_a_server(
    data_dir: Path,
) -> None:
    data_dir.mkdir(parents=True)
    passwords_from_file(data_dir / PASSWORDS_FILE)
    result = run_cli(data_dir, "projections", "check")
    assert result.returncode == 2, result.stderr
    assert "没有在运行" in result.stderr and "is not running" in result.stderr
    assert "Traceback" not in result.stderr


def test_nats_setup_sets_up_the_embedded_server_of_the_data_folder_as_its_admin(
    data_dir: Path, bare_server: EmbeddedNats
) -> None:
    port = str(bare_server.port)
    result = run_cli(data_dir, "nats-setup", "--timeout", "20", SHANGLIANG_EMBEDDED_NATS_PORT=port)
    assert result.returncode == 0, result.stderr
    checked = run_cli(data_dir, "projections", "rebuild", SHANGLIANG_EMBEDDED_NATS_PORT=port)
    assert checked.returncode == 0, checked.stderr
    after = run_cli(data_dir, "projections", "check", SHANGLIANG_EMBEDDED_NATS_PORT=port)
    assert after.returncode == 0, after.stderr
