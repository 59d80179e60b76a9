"""A plain POST /issues is recorded before FastAPI's routing (services/intake/hot.py): over
real HTTP it answers as the API does, and every request it does not take or refuses still
gets the API's own answer, with nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.intake.main import create_app
from shared.auth import Authenticator
from shared.embedded import EmbeddedNats
from shared.settings import Settings
from tests.support.servers import ServerThread

BODY = {
    "office": "yanji",
    "title": "小区路灯损坏",
    "description": "路灯坏了两个月",
    "category": "城市管理",
    "submitted_at": "2020-06-04T15:30:00+08:00",
    "reporter_name": "王五",
}


class Intake:
    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.tokens = Authenticator(settings)

    def token(self, office: str = "yanji", role: str = "clerk") -> str:
        return self.tokens.mint(office, [role], subject=f"{office}-{role}")

    def post(self, body: Any, token: str | None = None, **headers: str) -> httpx.Response:
        sent = {"Authorization": f"Bearer {token or self.token()}", **headers}
        if not isinstance(body, bytes):
            return httpx.post(f"{self.url}/issues", json=body, headers=sent, timeout=10)
        sent.setdefault("Content-Type", "application/json")
        return httpx.post(f"{self.url}/issues", content=body, headers=sent, timeout=10)

    def created(self) -> float:
        """POST /issues answered 201, as the metrics count them."""
        series = 'shangliang_http_requests_total{method="POST",route="/issues",'
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith(series) and 'status="201"' in line:
                return float(line.split()[-1])
        return 0.0

    def stored(self) -> int:
        """Issues the intake lists (its catalog follows the event store)."""
        answer = httpx.get(
            f"{self.url}/issues", headers={"Authorization": f"Bearer {self.token()}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["total"])


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intake]:
    """One intake for the module: each test counts what it stores from what it finds."""
    folder = tmp_path_factory.mktemp("hot")
    with EmbeddedNats(folder / "nats") as nats:
        settings = Settings(data_dir=folder / "data", nats_url=nats.url)
        nats.set_up_blocking(settings)  # the streams, as `shangliang up` creates them
        server = ServerThread(create_app(settings)).start()
        try:
            yield Intake(server.url, settings)
        finally:
            server.stop()


def test_the_hot_path_answers_as_the_api_does(intake: Intake) -> None:
    stored, counted = intake.stored(), intake.created()
    hot = intake.post(BODY)
    # An Idempotency-Key sends the same submission through FastAPI's route.
    routed = intake.post(BODY, **{"Idempotency-Key": "through-the-route"})

    assert hot.status_code == routed.status_code == 201, (hot.text, routed.text)
    for answer in (hot, routed):
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["location"] == f"/issues/{answer.json()['id']}"
        assert answer.headers["x-request-id"]
    differ = {"id", "recorded_at", "tracking_code"}  # two issues: their own ids and codes
    assert {k: v for k, v in hot.json().items() if k not in differ} == {
        k: v for k, v in routed.json().items() if k not in differ
    }
    assert hot.json()["reporter_name"] == "王五"  # the clerk of the issue's own office
    # Audit: both events record the clerk and the role that allowed it.
    clerk = {"Authorization": f"Bearer {intake.token()}"}
    for answer in (hot, routed):
        history = httpx.get(f"{intake.url}{answer.headers['location']}/history", headers=clerk)
        assert history.status_code == 200, history.text
        (entry,) = history.json()["entries"]
        assert (entry["actor"]["subject"], entry["actor"]["role"]) == ("yanji-clerk", "clerk")
    assert intake.created() == counted + 2  # both counted under the route's template
    assert intake.stored() == stored + 2


@pytest.mark.parametrize(
    ("body", "token", "headers", "status", "says"),
    [
        (BODY, "none", {}, 401, "访问令牌无效"),
        (BODY, "viewer", {}, 403, "clerk"),
        (BODY, "tumen", {}, 403, "本政协"),
        ({**BODY, "title": ""}, None, {}, 422, "title"),
        ({**BODY, "extra": 1}, None, {}, 422, "extra"),
        ({**BODY, "category": "没有的类别"}, None, {}, 422, "category"),
        ({**BODY, "submitted_at": "0001-01-01T00:00:00"}, None, {}, 422, "submitted_at"),
        (b'{"office": "yanji",', None, {}, 422, "JSON"),
        (b'{"office": "\xff"}', None, {}, 400, "parsing the body"),
        (BODY, None, {"Idempotency-Key": ""}, 422, "Idempotency-Key"),
    ],
)
def test_what_the_hot_path_refuses_gets_the_apis_answer_and_stores_nothing(
    intake: Intake, body: Any, token: str | None, headers: dict[str, str], status: int, says: str
) -> None:
    before = intake.stored()
    chosen = {
        None: None,
        "none": "not-a-token",
        "viewer": intake.token(role="viewer"),
        "tumen": intake.token("tumen"),
    }[token]

    answer = intake.post(body, chosen, **headers)

    assert answer.status_code == status, answer.text
    assert says in answer.text
    assert intake.stored() == before
