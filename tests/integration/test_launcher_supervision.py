"""The launcher's supervision with a real nats-server and a real child process: the backoff
between restarts, and the stop after a service failed its start N times in a row."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pydantic_settings import SettingsConfigDict

from shared.embedded import free_port
from shared.settings import ServiceSettings, Settings
from tools.launcher import (
    STATE_FILE,
    LaunchError,
    RestartPolicy,
    ServiceProcess,
    ServiceSpec,
    Stack,
)


class FlakySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_FLAKY_", extra="ignore")
    port: int = 0


FLAKY = ServiceSpec("flaky", "测试", "tests.integration.flaky_service", FlakySettings)


def test_the_delay_doubles_from_one_second_to_thirty() -> None:
    policy = RestartPolicy()
    assert [policy.delay(step) for step in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_service_that_fails_its_restart_n_times_in_a_row_stops_the_stack_naming_its_log(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    policy = RestartPolicy(first_delay=0.05, longest_delay=0.2, give_up_after=3)
    stack = Stack(Settings(data_dir=tmp_path), [FLAKY], say=said.append, policy=policy)
    try:
        stack.start()
        flaky = stack.service("flaky")
        assert flaky.process is not None
        os.kill(flaky.process.pid, signal.SIGKILL)
        with pytest.raises(LaunchError) as stopped:
            stack.watch()
    finally:
        stack.stop()
    message = str(stopped.value)
    assert "连续 3 次启动失败" in message and "failed its start 3 times in a row" in message
    assert str(tmp_path.resolve() / "logs" / "flaky.log") in message
    waits = [line.split("restarting in ")[1].split(";")[0] for line in said if "in " in line]
    assert waits == ["0.05s", "0.1s", "0.2s"], said
    state = json.loads((tmp_path / STATE_FILE).read_text())
    (flaky_state,) = [c for c in state["children"] if c["name"] == "flaky"]
    assert (flaky_state["restarts"], flaky_state["last_exit"]) == (3, 3), flaky_state
    assert state["state"] == "stopped"


def test_free_ports_are_never_handed_out_twice_in_one_process() -> None:
    ports = [free_port() for _ in range(400)]
    assert len(set(ports)) == len(ports)


def test_a_readiness_probe_answered_by_another_service_is_not_taken_for_ready(
    tmp_path: Path,
) -> None:
    # A launcher once put two services on one port; the second's probe reached the first.
    port = free_port()
    other = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.flaky_service"],
        env={
            **os.environ,
            "SHANGLIANG_DATA_DIR": str(tmp_path),
            "SHANGLIANG_FLAKY_PORT": str(port),
            "FLAKY_ANSWERS_AS": "intake",
        },
    )
    try:
        probe = ServiceProcess(FLAKY, "127.0.0.1", port, tmp_path / "flaky.log")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{probe.url}/readyz").json()["service"] == "intake":
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the other service did not answer")
        assert not probe.is_ready()
    finally:
        other.kill()
        other.wait()
