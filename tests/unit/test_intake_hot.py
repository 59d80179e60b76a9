"""The hot layer of POST /issues and the Open311 POST (services/intake/hot.py) in front of a
recording ASGI app: it records a plain submission itself, and hands everything else on with
the very body."""

from __future__ import annotations

import errno
import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from services.intake.application import IntakeApplication
from services.intake.hot import HotPath
from services.intake.open311 import Open311Error, key_id_for
from services.intake.open311_api import requested, requested_answer
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
        transport=httpx.ASGITransport(app=HotPath(downstream, state)),
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


def store_full(intake: IntakeApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    async def full(*aggregates: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(intake.group_commit, "save", full)


async def test_a_submission_the_store_cannot_take_goes_on_to_the_api(
    layer: tuple[httpx.AsyncClient, Downstream, Authenticator],
    intake: IntakeApplication,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, downstream, tokens = layer
    store_full(intake, monkeypatch)
    sent = json.dumps(BODY, ensure_ascii=False).encode()
    headers = {
        "Authorization": f"Bearer {tokens.mint('yanji', ['clerk'])}",
        "Content-Type": "application/json",
    }

    answer = await client.post("/issues", content=sent, headers=headers)

    assert answer.status_code == 299  # the API answers it: 503 for a full disk
    assert downstream.bodies == [sent]
    assert intake.recorder.max_notification_id() in (None, 0)


# --- Open311 POST service request --------------------------------------------------------

FORM = {
    "jurisdiction_id": "yanji",
    "service_code": "城市管理",
    "lat": "42.9048",
    "long": "129.5061",
    "description": "进学街路灯坏了\n晚上很黑",
    "first_name": "芳",
    "last_name": "王",
}
FORM_TYPE = "application/x-www-form-urlencoded"


@pytest.fixture
async def api_key(intake: IntakeApplication) -> str:
    key, _ = await intake.issue_open311_key("yanji", "居民小程序")
    return key


def form(key: str, **changes: str | None) -> bytes:
    fields = {"api_key": key, **FORM, **changes}
    return urllib.parse.urlencode({k: v for k, v in fields.items() if v is not None}).encode()


ALWAYS = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


def issues_stored(intake: IntakeApplication) -> int:
    """Events stored besides the key's own."""
    return (intake.recorder.max_notification_id() or 0) - 1


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_plain_open311_request_is_answered_as_the_route_answers_it(
    layer: tuple[httpx.AsyncClient, Downstream, Authenticator],
    intake: IntakeApplication,
    api_key: str,
    fmt: str,
) -> None:
    client, downstream, _ = layer
    path = f"/open311/v2/requests.{fmt}"
    sent = form(api_key)

    first = await client.post(path, content=sent, headers={"Content-Type": FORM_TYPE})
    retried = await client.post(path, content=sent, headers={"Content-Type": FORM_TYPE})

    assert (first.status_code, retried.status_code) == (201, 200), first.text
    assert downstream.bodies == []
    assert issues_stored(intake) == 1  # a retry never makes a second issue
    issue = next(iter(intake.service_requests("yanji", None, None, *ALWAYS, None)))
    assert (issue.source, issue.reporter_name, issue.location) == (
        "online",
        "王 芳",
        {"lat": 42.9048, "long": 129.5061},
    )
    rows = [
        {
            "service_request_id": str(issue.id),
            "token": intake.tracking_code(issue),
            "service_notice": "请保存查询码以查询办理进度 / keep the token to follow the request",
            "account_id": None,
        }
    ]
    for answer, created in ((first, True), (retried, False)):
        route = requested_answer(fmt, rows, created)  # what the route sends
        assert answer.status_code == route.status_code
        assert answer.content == route.body
        assert [(k, v) for k, v in answer.headers.raw] == route.raw_headers


@pytest.mark.parametrize(
    ("path", "changes", "headers"),
    [
        ("/open311/v2/requests.json", {"api_key": "not-a-key"}, {}),
        ("/open311/v2/requests.xml", {"api_key": "not-a-key"}, {}),
        ("/open311/v2/requests.json", {"jurisdiction_id": "tumen"}, {}),
        ("/open311/v2/requests.json", {"service_code": "没有的类别"}, {}),
        ("/open311/v2/requests.json", {"description": None}, {}),
        ("/open311/v2/requests.json", {"long": None}, {}),
        ("/open311/v2/requests.json", {"attribute[floor]": "3"}, {}),
        ("/open311/v2/requests.json", {"media_url": "not a link"}, {}),
        ("/open311/v2/requests.json", {}, {"Idempotency-Key": "k"}),
        ("/open311/v2/requests.json", {}, {"Content-Type": "text/plain"}),
        ("/open311/v2/requests.json", {}, {"Content-Type": "multipart/form-data; boundary=x"}),
        ("/open311/v2/requests.json?api_key=x", {}, {}),
        ("/open311/v2/requests.csv", {}, {}),
        ("/open311/v2/requests", {}, {}),
    ],
)
async def test_every_other_open311_post_goes_on_with_the_same_body_and_nothing_stored(
    layer: tuple[httpx.AsyncClient, Downstream, Authenticator],
    intake: IntakeApplication,
    api_key: str,
    path: str,
    changes: dict[str, str | None],
    headers: dict[str, str],
) -> None:
    client, downstream, _ = layer
    sent = form(api_key, **changes)

    answer = await client.post(path, content=sent, headers={"Content-Type": FORM_TYPE, **headers})

    assert answer.status_code == 299
    assert downstream.bodies == [sent]
    assert issues_stored(intake) == 0


async def test_a_form_that_is_not_utf8_goes_on_with_the_same_body(
    layer: tuple[httpx.AsyncClient, Downstream, Authenticator],
    intake: IntakeApplication,
    api_key: str,
) -> None:
    client, downstream, _ = layer
    sent = form(api_key) + b"&first_name=%FF"
    with pytest.raises(Open311Error):  # as the route reads it
        await requested(intake, sent)

    answer = await client.post(
        "/open311/v2/requests.json", content=sent, headers={"Content-Type": FORM_TYPE}
    )

    assert answer.status_code == 299
    assert downstream.bodies == [sent]
    assert issues_stored(intake) == 0


async def test_a_revoked_key_goes_on_to_the_api(
    layer: tuple[httpx.AsyncClient, Downstream, Authenticator],
    intake: IntakeApplication,
    api_key: str,
) -> None:
    client, downstream, _ = layer
    path, headers = "/open311/v2/requests.json", {"Content-Type": FORM_TYPE}
    assert (await client.post(path, content=form(api_key), headers=headers)).status_code == 201
    await intake.revoke_open311_key(key_id_for(api_key))
    sent = form(api_key, description="另一处路灯也坏了")

    answer = await client.post(path, content=sent, headers=headers)

    assert answer.status_code == 299
    assert downstream.bodies == [sent]
    assert issues_stored(intake) == 2  # the first request and the revocation


async def test_an_open311_request_the_store_cannot_take_goes_on_to_the_api(
    layer: tuple[httpx.AsyncClient, Downstream, Authenticator],
    intake: IntakeApplication,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, downstream, _ = layer
    store_full(intake, monkeypatch)
    sent = form(api_key)

    answer = await client.post(
        "/open311/v2/requests.xml", content=sent, headers={"Content-Type": FORM_TYPE}
    )

    assert answer.status_code == 299
    assert downstream.bodies == [sent]
    assert issues_stored(intake) == 0
