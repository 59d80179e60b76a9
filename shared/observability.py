"""What operators see of a running service (可观测性): Prometheus metrics at `/metrics` and
structured JSON logs that carry the request id.

Metrics are module-level, labelled by service: a process runs one service, and tests that
create several apps in one process must not register a metric twice.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = REQUEST_ID_HEADER.encode()
# A request id unique across processes without a uuid per request: on the hot paths a uuid4
# cost as much as the rest of this middleware.
_PROCESS_ID = uuid.uuid4().hex[:24]
_request_numbers = itertools.count()
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

HTTP_REQUESTS = Counter(
    "shangliang_http_requests_total",
    "HTTP requests answered, by route and status",
    ["service", "method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "shangliang_http_request_seconds",
    "Time to answer an HTTP request",
    ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
EVENTS_RELAYED = Counter(
    "shangliang_events_relayed_total",
    "Stored events the relay published to the service's stream (acknowledged)",
    ["stream"],
)
RELAY_POSITION = Gauge(
    "shangliang_relay_position",
    "Notification id of the last stored event that is in the stream",
    ["stream"],
)
CONSUMER_POSITION = Gauge(
    "shangliang_consumer_position",
    "Stream sequence of the last message a consumer applied",
    ["stream", "view"],
)
CONSUMER_LAG = Gauge(
    "shangliang_consumer_lag",
    "Messages in the stream the consumer has not applied yet",
    ["stream", "view"],
)


class ObservedRequests:
    """ASGI middleware: a request id for logs and the answer, and request metrics.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which costs every request a task
    and a memory stream, and with the labelled series looked up once: this sits in front of
    the hot paths (POST /issues, GET /statistics).
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _observe(self, method: str, template: str, status_code: int, seconds: float) -> None:
        key = (method, template, status_code)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                HTTP_REQUESTS.labels(self.service, method, template, str(status_code)),
                HTTP_SECONDS.labels(self.service, template),
            )
        series[0].inc()
        series[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = (
            next(
                (v.decode("latin-1")[:64] for k, v in scope["headers"] if k == _REQUEST_ID),
                None,
            )
            or f"{_PROCESS_ID}{next(_request_numbers):08x}"
        )
        token = request_id.set(rid)
        started = time.perf_counter()
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message["headers"] = [*message.get("headers", []), (_REQUEST_ID, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            # The route's template, not the path: ids in paths would make a series per issue.
            template = getattr(route, "path", "unmatched")
            self._observe(scope["method"], template, status_code, time.perf_counter() - started)
            if status_code >= 500:
                logging.getLogger("shangliang.http").error(
                    "%s %s answered %d", scope["method"], scope["path"], status_code
                )
            request_id.reset(token)


def metrics_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def install_observability(app: FastAPI, service: str) -> None:
    app.add_middleware(ObservedRequests, service=service)
    app.include_router(metrics_router())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for the ops team's log collector."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (rid := request_id.get()) is not None:
            entry["request_id"] = rid
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_config(service: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for a service and for uvicorn's own loggers."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
