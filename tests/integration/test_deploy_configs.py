"""The NATS configs in deploy/ are ones nats-server accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shared.embedded import nats_server_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize("config", sorted(DEPLOY.glob("nats/*.conf")), ids=lambda p: p.name)
def test_nats_server_accepts_the_config(config: Path) -> None:
    result = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
