"""A plain POST /issues and a plain Open311 POST are recorded before FastAPI's routing
(services/intake/hot.py): over real HTTP they answer as the API does, and every request the
layer does not take or refuses still gets the API's own answer, with nothing stored."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Iterator
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

    def created(self, route: str = "/issues", status: int = 201) -> float:
        """POSTs to the route answered with this status, as the metrics count them."""
        series = f'shangliang_http_requests_total{{method="POST",route="{route}",'
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith(series) and f'status="{status}"' in line:
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


# --- Open311 POST service request --------------------------------------------------------

OPEN311 = "/open311/v2/requests.{fmt}"
FORM = {
    "jurisdiction_id": "yanji",
    "service_code": "城市管理",
    "lat": "42.9048",
    "long": "129.5061",
    "description": "进学街路灯坏了",
    "first_name": "芳",
    "last_name": "王",
}
UNSHARED = {"date", "server", "x-request-id"}
"""The headers that differ between any two answers."""


@pytest.fixture(scope="module")
def api_key(intake: Intake) -> str:
    admin = {"Authorization": f"Bearer {intake.token(role='admin')}"}
    body = {"office": "yanji", "label": "居民小程序"}
    issued = httpx.post(f"{intake.url}/open311/keys", json=body, headers=admin, timeout=10)
    assert issued.status_code == 201, issued.text
    return str(issued.json()["api_key"])


def request(intake: Intake, fmt: str, form: bytes, routed: bool = False) -> httpx.Response:
    """A form POST; `routed` adds a query string, which the hot path leaves to the route."""
    url = f"{intake.url}/open311/v2/requests.{fmt}" + ("?via=route" if routed else "")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return httpx.post(url, content=form, headers=headers, timeout=10)


def form(key: str, **changes: str | None) -> bytes:
    fields = {"api_key": key, **FORM, **changes}
    return urllib.parse.urlencode({k: v for k, v in fields.items() if v is not None}).encode()


def same_answer(
    hot: httpx.Response, routed: httpx.Response, masked: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Status, headers and body byte for byte, but for the `masked` parts (hot's, route's)."""
    assert hot.status_code == routed.status_code, (hot.text, routed.text)
    shared = [(k, v) for k, v in hot.headers.raw if k.lower().decode() not in UNSHARED]
    assert shared == [(k, v) for k, v in routed.headers.raw if k.lower().decode() not in UNSHARED]
    body, other = hot.content, routed.content
    for own, theirs in masked:
        body, other = body.replace(own, b"@"), other.replace(theirs, b"@")
    assert body == other


def ids(answer: httpx.Response) -> list[bytes]:
    if answer.headers["content-type"].startswith("application/json"):
        (row,) = answer.json()
        return [row["service_request_id"].encode(), row["token"].encode()]
    text = answer.text
    return [
        text.split(f"<{tag}>")[1].split(f"</{tag}>")[0].encode()
        for tag in ("service_request_id", "token")
    ]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_open311_hot_path_answers_with_the_routes_very_bytes(
    intake: Intake, api_key: str, fmt: str
) -> None:
    route = OPEN311.format(fmt="{fmt}")
    stored = intake.stored()
    counted = (intake.created(route, 201), intake.created(route, 200))
    sent = form(api_key, description=f"进学街路灯坏了（{fmt}）")

    hot = request(intake, fmt, sent)
    # A retry, once through the route (a query string) and once hot: the same first issue.
    routed_retry, hot_retry = request(intake, fmt, sent, routed=True), request(intake, fmt, sent)
    routed = request(intake, fmt, form(api_key, description=f"井盖缺失（{fmt}）"), routed=True)

    assert (hot.status_code, routed.status_code, hot_retry.status_code) == (201, 201, 200)
    same_answer(hot_retry, routed_retry)
    same_answer(hot, routed, zip(ids(hot), ids(routed), strict=True))
    assert ids(hot) == ids(hot_retry)
    assert intake.stored() == stored + 2
    # All four counted under the route's template.
    assert (intake.created(route, 201), intake.created(route, 200)) == (
        counted[0] + 2,
        counted[1] + 2,
    )


@pytest.mark.parametrize(
    ("fmt", "changes", "extra", "status", "says"),
    [
        ("json", {"api_key": "not-a-key"}, b"", 403, "api_key"),
        ("xml", {"api_key": "not-a-key"}, b"", 403, "<code>403</code>"),
        ("json", {"jurisdiction_id": "tumen"}, b"", 403, "jurisdiction_id"),
        ("json", {"service_code": "没有的类别"}, b"", 404, "service_code"),
        ("json", {"description": None}, b"", 400, "description"),
        ("json", {"long": None}, b"", 400, "lat/long"),
        ("json", {"attribute[floor]": "3"}, b"", 400, "attribute[floor]"),
        ("json", {"media_url": "not a link"}, b"", 400, "media_url"),
        ("json", {}, b"&first_name=%FF", 400, "UTF-8"),
        ("xml", {}, b"&first_name=%FF", 400, "UTF-8"),
    ],
)
def test_what_the_open311_hot_path_refuses_gets_the_apis_answer_and_stores_nothing(
    intake: Intake,
    api_key: str,
    fmt: str,
    changes: dict[str, str | None],
    extra: bytes,
    status: int,
    says: str,
) -> None:
    before = intake.stored()
    sent = form(api_key, **changes) + extra

    answer = request(intake, fmt, sent)

    assert answer.status_code == status, answer.text
    assert says in answer.text
    if fmt == "json":
        (error,) = answer.json()
        assert set(error) == {"code", "description"} and error["code"] == status
    same_answer(answer, request(intake, fmt, sent, routed=True))
    assert intake.stored() == before
