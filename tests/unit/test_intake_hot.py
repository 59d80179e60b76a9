"""The hot layer of POST /issues (services/intake/hot.py) in front of a recording ASGI app:
it records a plain submission itself, and hands everything else on with the very body."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from services.intake.application import IntakeApplication
from services.intake.hot import HotSubmission
from shared.audit import read_history
from shared.auth import Authenticator
from shared.settings import Settings

BODY = {
    "office": "yanji",
    "title": "小区路灯损坏",
    "description": "路灯坏了两个月",
    "category": "城市管理",
    "submitted_at": "2020-06-04T15:30:00+08:00",
}


class Downstream:
    """Stands where FastAPI's app is: notes what reached it, answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def layer(intake: IntakeApplication) -> tuple[httpx.AsyncClient, Downstream, Authenticator]:
    state = State()
    state.intake = intake
    state.authenticator = Authenticator(Settings())
    downstream = Downstream()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=HotSubmission(downstream, state)),
        base_url="http://intake",
    )
    return client, downstream, state.authenticator


async def test_a_plain_submission_is_recorded_without_reaching_the_api(
    layer: tuple[httpx.AsyncClient, Downstream, Authenticator], intake: IntakeApplication
) -> None:
    client, downstream, tokens = layer
    token = tokens.mint("yanji", ["clerk"], subject="clerk-1")

    answer = await client.post("/issues", json=BODY, headers={"Authorization": f"Bearer {token}"})

    assert answer.status_code == 201, answer.text
    assert downstream.bodies == []
    issue = intake.get_issue(answer.json()["id"])
    assert answer.headers["location"] == f"/issues/{issue.id}"
    assert (issue.title, issue.office) == ("小区路灯损坏", "yanji")
    (entry,) = read_history(intake, issue.id, frozenset())
    assert (entry.actor.subject, entry.actor.role) == ("clerk-1", "clerk")


@pytest.mark.parametrize(
    ("path", "body", "roles", "headers"),
    [
        ("/issues", BODY, ["viewer"], {}),
        ("/issues", {**BODY, "office": "tumen"}, ["clerk"], {}),
        ("/issues", {**BODY, "title": ""}, ["clerk"], {}),
        ("/issues", {**BODY, "category": "没有的类别"}, ["clerk"], {}),
        ("/issues", BODY, ["clerk"], {"Idempotency-Key": "k"}),
        ("/issues", BODY, ["clerk"], {"Content-Type": "text/plain"}),
        ("/issues?x=1", BODY, ["clerk"], {}),
        ("/issues/", BODY, ["clerk"], {}),
        ("/activities", BODY, ["clerk"], {}),
    ],
)
async def test_everything_else_goes_on_with_the_same_body_and_nothing_stored(
    layer: tuple[httpx.AsyncClient, Downstream, Authenticator],
    intake: IntakeApplication,
    path: str,
    body: dict[str, object],
    roles: list[str],
    headers: dict[str, str],
) -> None:
    client, downstream, tokens = layer
    sent = json.dumps(body, ensure_ascii=False).encode()
    token = tokens.mint("yanji", roles)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers}

    answer = await client.post(path, content=sent, headers=headers)

    assert answer.status_code == 299
    assert downstream.bodies == [sent]
    assert intake.recorder.max_notification_id() in (None, 0)
