"""The naive baseline (对照组): one FastAPI `def` endpoint, one SQLite transaction per request.

What a first version of intake would look like: the same request body and the same `Issue`
aggregate, saved by the plain eventsourcing `Application` on SQLite, one aggregate per
request, on FastAPI's thread pool. No token check, no group commit, no relay, no NATS.

    python -m bench.baseline_app --port 8200 --db /tmp/baseline.sqlite
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from uuid import UUID, uuid4

import uvicorn
from eventsourcing.application import Application
from fastapi import FastAPI, status

# The same request and response models as intake's `POST /issues`.
from services.intake.api import IssueSubmission, IssueView
from services.intake.domain import Issue


class Baseline(Application[UUID]):
    name = "baseline"


def create_app(store_env: dict[str, str]) -> FastAPI:
    store = Baseline(env=store_env)
    app = FastAPI(title="baseline: one aggregate per request")

    @app.post("/issues", status_code=status.HTTP_201_CREATED, response_model=IssueView)
    def submit_issue(body: IssueSubmission) -> IssueView:
        """Save one issue in its own transaction."""
        issue = Issue.submit(
            uuid4(),
            body.office,
            body.title,
            body.description,
            body.category,
            body.submitted_at,
            now=datetime.now(UTC),
        )
        store.save(issue)
        return IssueView.of(issue)

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        """Ready as soon as it answers."""
        return {"status": "ready"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="The naive baseline for bench.run.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--store-env", required=True, help="the event store's eventsourcing environment, JSON"
    )
    args = parser.parse_args()
    uvicorn.run(
        create_app(json.loads(args.store_env)),
        host=args.host,
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )


if __name__ == "__main__":
    main()
