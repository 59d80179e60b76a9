"""The bare endpoint (对照组) for bench.statistics_bench: FastAPI answering fixed bytes.

An `async def` route that returns a precomputed body of the same shape and size as
`GET /statistics/{year}`: no token check, no view, no query. What FastAPI on uvicorn can do.

    python -m bench.statistics_bare --port 8201 --body /tmp/statistics.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response


def create_app(body: bytes) -> FastAPI:
    app = FastAPI(title="bare: fixed statistics bytes")

    @app.get("/statistics/{year}")
    async def statistics(year: int) -> Response:
        """The same bytes every time."""
        return Response(body, media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        """Ready as soon as it answers."""
        return {"status": "ready"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True, help="the JSON body to answer")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.body.read_bytes()),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )


if __name__ == "__main__":
    main()
