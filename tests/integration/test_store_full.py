"""A store out of disk space (a small tmpfs filled to the last byte): a write is refused with
503 and a clear message, nothing of it is stored, and the same write is taken once when
space returns."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.intake.main import create_app
from shared.auth import Authenticator
from shared.embedded import EmbeddedNats
from shared.settings import Settings
from shared.web import STORE_FULL
from tests.support.disk import fill
from tests.support.http import issue_body
from tests.support.servers import ServerThread
from tests.support.stores import count_rows

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_store_refuses_with_503_stores_nothing_and_takes_the_retry_once_space_returns(
    small_disk: Path, nats_server: EmbeddedNats
) -> None:
    settings = Settings(data_dir=small_disk, nats_url=nats_server.url)
    nats_server.set_up_blocking(settings)
    server = ServerThread(create_app(settings)).start()
    token = Authenticator(settings).mint("yanji", ["clerk"], subject="full")

    bodies: dict[str, dict[str, object]] = {}

    def submit(key: str) -> httpx.Response:
        """The same body for the same key: a retry."""
        body = bodies.setdefault(key, issue_body())
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
        return httpx.post(f"{server.url}/issues", json=body, headers=headers, timeout=30)

    try:
        assert submit("before").status_code == 201
        store = small_disk / "intake.sqlite"
        stored = count_rows(store, "stored_events")
        filler = fill(small_disk)
        refused = [submit(f"while-full-{n}") for n in range(3)]
        assert [r.status_code for r in refused] == [503] * 3, [r.text for r in refused]
        assert all(r.json()["message"] == STORE_FULL for r in refused)
        assert count_rows(store, "stored_events") == stored
        filler.unlink()
        taken = submit("while-full-0")
        again = submit("while-full-0")
    finally:
        server.stop()
    assert taken.status_code == 201, taken.text
    assert again.status_code == 200, again.text
    assert again.json()["id"] == taken.json()["id"]
    assert count_rows(store, "stored_events") == stored + 1
