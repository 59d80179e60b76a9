"""What every service's HTTP side shares: health and readiness probes."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Response, status


def health_router(is_ready: Callable[[], str | None]) -> APIRouter:
    """`/healthz` answers while the process lives; `/readyz` names what is not ready yet."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz(response: Response) -> dict[str, str]:
        """Ready to serve: connected to NATS and caught up with the store or streams."""
        problem = is_ready()
        if problem is not None:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return {"status": "not ready", "reason": problem}
        return {"status": "ready"}

    return router
