"""What the embedded default writes to disk (私有文件) is readable by its owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from services.intake.application import IntakeApplication
from services.projections.views import open_projection_view
from shared.embedded import EmbeddedNats
from shared.files import open_private_log
from shared.settings import Settings
from tests.support.intake_store import store_issues


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_event_stores_and_their_companions_are_created_owner_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = IntakeApplication(env=settings.event_store_env("intake"))
    try:
        store_issues(app, 10)
        files = sorted((tmp_path / "data").glob("intake.sqlite*"))
        assert [f.name for f in files][:2] == ["intake.sqlite", "intake.sqlite-shm"]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(tmp_path / "data") == 0o700
    finally:
        app.close()


def test_a_store_and_folder_an_older_version_left_readable_are_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "meetings.sqlite").touch(mode=0o644)
    data.chmod(0o755)

    Settings(data_dir=data).event_store_env("meetings")

    assert (mode(data), mode(data / "meetings.sqlite")) == (0o700, 0o600)


def test_the_projections_view_file_is_created_owner_only(tmp_path: Path) -> None:
    view = open_projection_view(str(tmp_path / "projections.sqlite"))
    view.datastore.close()
    assert mode(tmp_path / "projections.sqlite") == 0o600


def test_logs_are_owner_only_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "intake.log"
    for line in (b"one\n", b"two\n"):
        with open_private_log(path) as log:
            log.write(line)
    assert path.read_bytes() == b"one\ntwo\n"
    assert (mode(path), mode(path.parent)) == (0o600, 0o700)


def test_the_embedded_nats_server_keeps_its_folder_and_log_owner_only(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "nats").start():
        pass
    assert mode(tmp_path / "nats") == 0o700
    assert mode(tmp_path / "nats" / "nats-server.log") == 0o600
