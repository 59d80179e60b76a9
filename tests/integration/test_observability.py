"""Operators see a service: metrics at /metrics, a request id on every answer, JSON logs."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from shared.observability import install_observability, log_config, request_id


def observed_app() -> FastAPI:
    app = FastAPI()
    install_observability(app, "probe")

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        if thing_id == 0:
            raise HTTPException(404, "no such thing")
        logging.getLogger("probe").warning("looked at %d", thing_id)
        return {"id": thing_id}

    return app


async def test_metrics_count_requests_by_route_template_and_status() -> None:
    transport = httpx.ASGITransport(app=observed_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        for thing_id in (1, 2, 0):
            await client.get(f"/things/{thing_id}")
        text = (await client.get("/metrics")).text
    ok = (
        'shangliang_http_requests_total{method="GET",route="/things/{thing_id}",'
        'service="probe",status="200"}'
    )
    missing = ok.replace('status="200"', 'status="404"')
    assert _value(text, ok) >= 2
    assert _value(text, missing) >= 1
    assert "/things/1" not in text  # one series per route, not per id


async def test_every_answer_carries_a_request_id_and_keeps_a_given_one() -> None:
    transport = httpx.ASGITransport(app=observed_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        fresh = await client.get("/things/1")
        given = await client.get("/things/1", headers={"X-Request-ID": "abc-123"})
    assert len(fresh.headers["x-request-id"]) == 32
    assert given.headers["x-request-id"] == "abc-123"


def test_logs_are_json_lines_with_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(log_config("probe"))
    token = request_id.set("req-7")
    try:
        logging.getLogger("probe").warning("问题 %d 已收到", 7)
    finally:
        request_id.reset(token)
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["message"] == "问题 7 已收到"
    assert entry["request_id"] == "req-7"
    assert entry["service"] == "probe"
    assert entry["level"] == "warning"
    assert datetime.fromisoformat(entry["time"]).tzinfo == UTC


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no series {series} in /metrics")
