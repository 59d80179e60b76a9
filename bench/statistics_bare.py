"""The bare endpoint (对照组) for bench.statistics_bench and bench.run: FastAPI answering
fixed bytes.

`async def` routes that return a precomputed body of the same shape and size as
`GET /statistics/{year}` or `POST /issues` (which reads the request body and answers 201):
no token check, no validation, no store. What FastAPI on uvicorn can do.

    python -m bench.statistics_bare --port 8201 --body /tmp/statistics.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response


def create_app(body: bytes) -> FastAPI:
    app = FastAPI(title="bare: fixed statistics bytes")

    @app.get("/statistics/{year}")
    async def statistics(year: int) -> Response:
        """The same bytes every time."""
        return Response(body, media_type="application/json")

    @app.post("/issues", status_code=201)
    async def submit_issue(request: Request) -> Response:
        """Reads the body as any POST must, then the same bytes every time."""
        await request.body()
        return Response(body, status_code=201, media_type="application/json")

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
