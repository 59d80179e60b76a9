"""Open-loop submission-to-projection latency: POST an issue, long-poll the read side for it.

Requests start on a fixed schedule whatever the answers do (open loop), so a slow answer
cannot hold back the next request and hide itself. Each is timed from the moment it was due
until `GET /issues/{id}?wait=…` on projections returned 200.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IDLE_REUSE_SECONDS = 4.0


class HttpError(Exception):
    """An answer this minimal client cannot read."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.idle_since = time.monotonic()

    @property
    def stale(self) -> bool:
        """Closed by the server, or soon to be: uvicorn closes a connection idle for 5 s."""
        return self._reader.at_eof() or time.monotonic() - self.idle_since > IDLE_REUSE_SECONDS

    async def roundtrip(self, request: bytes) -> tuple[int, bytes, bool]:
        self._writer.write(request)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            if line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip().lower()
        if "content-length" not in headers:
            raise HttpError(f"no Content-Length in the answer: {status_line}")
        payload = await self._reader.readexactly(int(headers["content-length"]))
        self.idle_since = time.monotonic()
        return int(status_line.split(" ", 2)[1]), payload, headers.get("connection") != "close"

    def close(self) -> None:
        self._writer.close()


class HttpClient:
    """A minimal HTTP/1.1 keep-alive client, several times lighter than a full one: the
    generator shares the two cores with the servers it measures."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._idle: list[_Connection] = []

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        connection = None
        while self._idle and connection is None:
            connection = self._idle.pop()
            if connection.stale:
                connection.close()
                connection = None
        if connection is None:
            connection = _Connection(*await asyncio.open_connection(self._host, self._port))
        try:
            status, payload, reusable = await connection.roundtrip(request)
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._idle.append(connection)
        else:
            connection.close()
        return status, payload

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


@dataclass(frozen=True)
class Sample:
    at_s: float
    """When the POST was due, in seconds since the measurement started."""
    total_s: float | None
    """From when the POST was due until the projection answered 200; None if it failed."""
    post_s: float | None
    send_lag_s: float
    error: str | None = None


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def summarize_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    ms = {f"p{p}": percentile(ordered, p) * 1000 for p in (50, 95, 99)}
    ms["max"] = ordered[-1] * 1000
    ms["mean"] = sum(ordered) / len(ordered) * 1000
    return {k: round(v, 2) for k, v in ms.items()}


@dataclass(frozen=True)
class LatencyResult:
    rate: float
    duration_s: float
    samples: list[Sample]

    def as_dict(self) -> dict[str, Any]:
        ok = [
            (s.at_s, s.total_s, s.post_s)
            for s in self.samples
            if s.total_s is not None and s.post_s is not None
        ]
        errors: dict[str, int] = {}
        for s in self.samples:
            if s.error is not None:
                errors[s.error] = errors.get(s.error, 0) + 1
        slowest = sorted(ok, key=lambda sample: sample[1], reverse=True)[:10]
        return {
            "target_rate": self.rate,
            "duration_s": self.duration_s,
            "requests": len(self.samples),
            "ok": len(ok),
            "errors": errors,
            "submit_to_projection_ms": summarize_ms([total for _, total, _ in ok]),
            "post_only_ms": summarize_ms([post for _, _, post in ok]),
            "max_send_lag_ms": round(max((s.send_lag_s for s in self.samples), default=0) * 1e3, 2),
            "slowest": [
                {"at_s": round(at, 3), "total_ms": round(t * 1e3, 2), "post_ms": round(p * 1e3, 2)}
                for at, t, p in slowest
            ],
        }


class _Submitter:
    def __init__(
        self, intake_url: str, projections_url: str, token: str, body: bytes, wait_s: float
    ) -> None:
        self._intake = HttpClient(intake_url)
        self._projections = HttpClient(projections_url)
        self._auth = {"Authorization": f"Bearer {token}"}
        self._post_headers = {**self._auth, "Content-Type": "application/json"}
        self._body = body
        self._wait = wait_s

    async def one(self, start: float, due: float) -> Sample:
        at = due - start
        lag = time.perf_counter() - due
        try:
            async with asyncio.timeout(self._wait + 10):
                status, payload = await self._intake.request(
                    "POST", "/issues", self._post_headers, self._body
                )
                posted = time.perf_counter()
                if status != 201:
                    return Sample(at, None, None, lag, f"POST {status}")
                issue_id = json.loads(payload)["id"]
                path = f"/issues/{issue_id}?wait={self._wait:g}"
                status, _ = await self._projections.request("GET", path, self._auth)
                if status != 200:
                    return Sample(at, None, None, lag, f"GET {status}")
                return Sample(at, time.perf_counter() - due, posted - due, lag)
        except TimeoutError:
            return Sample(at, None, None, lag, "timeout")
        except (OSError, HttpError, asyncio.IncompleteReadError) as error:
            return Sample(at, None, None, lag, type(error).__name__)

    async def paced(self, rate: float, duration_s: float) -> list[Sample]:
        # perf_counter, not loop.time(): uvloop's clock has only millisecond resolution.
        start = time.perf_counter() + 0.01
        tasks = []
        for i in range(round(rate * duration_s)):
            due = start + i / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(start, due)))
        return list(await asyncio.gather(*tasks))

    def close(self) -> None:
        self._intake.close()
        self._projections.close()


async def measure(
    intake_url: str,
    projections_url: str,
    token: str,
    body: bytes,
    *,
    rate: float,
    duration_s: float,
    warmup_s: float,
    wait_s: float = 5.0,
) -> LatencyResult:
    submitter = _Submitter(intake_url, projections_url, token, body, wait_s)
    try:
        if warmup_s > 0:
            await submitter.paced(rate, warmup_s)
        samples = await submitter.paced(rate, duration_s)
    finally:
        submitter.close()
    return LatencyResult(rate, duration_s, samples)
