"""A clerk, another office and the prefecture use intake and projections over HTTP."""

from __future__ import annotations

import itertools
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.intake.domain import issue_id_for
from shared.auth import Authenticator
from shared.clock import CHINA
from shared.settings import Settings
from tests.support.http import bearer, issue_body
from tests.support.stack import ROOT, RunningStack, shangliang

MISSING = object()

# Each test counts in years of its own, so that tests sharing the stack cannot move its counts.
# Counted per stack: the module runs once per persistence, each time on a fresh stack.
_years: dict[int, Iterator[int]] = {}


def fresh_year(stack: RunningStack) -> int:
    return next(_years.setdefault(id(stack), itertools.count(2001)))


@pytest.fixture(scope="module")
def yanji_clerk() -> str:
    """Minted by the command a user runs, so the services are shown to accept its tokens."""
    result = subprocess.run(
        shangliang("token", "--office", "yanji", "--role", "clerk"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


def submit(
    stack: RunningStack, token: str, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = bearer(token)
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.post(f"{stack.intake}/issues", json=body, headers=headers, timeout=10)


def in_projection(stack: RunningStack, token: str, issue_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{stack.projections}/issues/{issue_id}",
        params={"wait": 5},
        headers=bearer(token),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def collected(stack: RunningStack, mint: Callable[..., str], years: Iterable[int]) -> int:
    """Issues collected by all offices in these years, as the prefecture reads them."""
    total = 0
    for year in years:
        response = httpx.get(
            f"{stack.projections}/statistics/{year}",
            headers=bearer(mint("yanbian", "viewer")),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        total += response.json()["total"]["issues_collected"]
    return total


def years_in(body: dict[str, Any]) -> set[int]:
    """The year a body's submission time would count in, if it is a time at all."""
    try:
        moment = datetime.fromisoformat(body["submitted_at"])
        return {moment.astimezone(CHINA).year if moment.tzinfo else moment.year}
    except (KeyError, TypeError, ValueError, OverflowError):  # no time, or none China has
        return set()


def refused_and_nothing_stored(
    stack: RunningStack,
    mint: Callable[..., str],
    token: str,
    body: dict[str, Any],
    status: int,
    key: str | None = None,
) -> httpx.Response:
    """Send a submission that must be refused, then show that it stored nothing.

    A valid issue sent afterwards is stored after anything the refused one might have stored,
    and the projection applies the stream in order: once the valid one is visible, it must be
    the only new issue in every year involved.
    """
    probe_year = fresh_year(stack)
    years = {probe_year} | years_in(body)
    before = collected(stack, mint, years)
    response = submit(stack, token, body, key)
    assert response.status_code == status, response.text
    probe = submit(stack, mint("yanji", "clerk"), issue_body(year=probe_year))
    assert probe.status_code == 201, probe.text
    in_projection(stack, mint("yanbian", "viewer"), probe.json()["id"])
    assert collected(stack, mint, years) == before + 1
    return response


def fields_named(response: httpx.Response) -> set[str]:
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return {str(part) for error in detail for part in error["loc"]}


def test_a_clerk_submission_appears_in_the_projection_within_two_seconds(
    stack: RunningStack, yanji_clerk: str
) -> None:
    body = issue_body()
    started = time.monotonic()
    response = submit(stack, yanji_clerk, body)
    assert response.status_code == 201, response.text
    issue_id = response.json()["id"]
    assert response.headers["Location"] == f"/issues/{issue_id}"

    while True:
        seen = httpx.get(
            f"{stack.projections}/issues/{issue_id}", headers=bearer(yanji_clerk), timeout=5
        )
        elapsed = time.monotonic() - started
        if seen.status_code == 200:
            break
        assert seen.status_code == 404, seen.text
        assert elapsed < 2.0, "the projection did not show the issue within 2 s"
        time.sleep(0.02)

    assert elapsed < 2.0
    status = seen.json()
    assert (status["office"], status["title"], status["status"]) == (
        "yanji",
        body["title"],
        "submitted",
    )
    assert [step["step"] for step in status["timeline"]] == ["submitted"]


def test_another_office_gets_404_and_the_prefecture_reads_both_services(
    stack: RunningStack, mint: Callable[..., str], yanji_clerk: str
) -> None:
    response = submit(stack, yanji_clerk, issue_body())
    assert response.status_code == 201, response.text
    issue_id = response.json()["id"]
    prefecture = mint("yanbian", "viewer")
    in_projection(stack, prefecture, issue_id)

    tumen = mint("tumen", "clerk", "viewer")
    for service in (stack.intake, stack.projections):
        other = httpx.get(f"{service}/issues/{issue_id}", headers=bearer(tumen), timeout=5)
        missing = httpx.get(f"{service}/issues/{uuid.uuid4()}", headers=bearer(tumen), timeout=5)
        assert other.status_code == 404, other.text
        # Indistinguishable from an issue that does not exist: nothing leaks across offices.
        assert other.json() == missing.json()

        for reader in (prefecture, yanji_clerk):
            seen = httpx.get(f"{service}/issues/{issue_id}", headers=bearer(reader), timeout=5)
            assert seen.status_code == 200, seen.text
            assert seen.json()["office"] == "yanji"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-token",
        "Bearer " + Authenticator(Settings(signing_keys=["x" * 40])).mint("yanji", ["clerk"]),
    ],
    ids=["no token", "a garbage token", "a token signed with another key"],
)
def test_a_request_without_a_valid_token_gets_401(
    stack: RunningStack, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    some_id = uuid.uuid4()
    requests = [
        ("POST", f"{stack.intake}/issues", issue_body()),
        ("GET", f"{stack.intake}/issues/{some_id}", None),
        ("GET", f"{stack.projections}/issues/{some_id}", None),
        ("GET", f"{stack.projections}/statistics/2020", None),
    ]
    for method, url, body in requests:
        response = httpx.request(method, url, json=body, headers=headers, timeout=5)
        assert response.status_code == 401, (method, url, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": MISSING}, "title"),
        ({"category": MISSING}, "category"),
        ({"submitted_at": "yesterday"}, "submitted_at"),
        ({"title": ["小区路灯损坏"]}, "title"),
        ({"description": {"text": "路灯不亮"}}, "description"),
        ({"category": "外星人入侵"}, "category"),
        ({"submitted_at": _in_an_hour()}, "submitted_at"),
        ({"submitted_at": "0001-01-01T00:00:00+09:00"}, "submitted_at"),
    ],
    ids=[
        "a missing title",
        "a missing category",
        "a submission time that is no time",
        "a title that is a list",
        "a description that is an object",
        "an unknown category",
        "a submission time in the future",
        "a submission time before China's clock begins (found by fuzzing)",
    ],
)
def test_a_malformed_submission_gets_422_naming_the_field_and_stores_nothing(
    stack: RunningStack, mint: Callable[..., str], change: dict[str, Any], field: str
) -> None:
    body = issue_body(year=fresh_year(stack))
    for name, value in change.items():
        if value is MISSING:
            del body[name]
        else:
            body[name] = value
    response = refused_and_nothing_stored(stack, mint, mint("yanji", "clerk"), body, 422)
    assert field in fields_named(response)
    message = response.json()["message"]
    assert message.startswith("请求数据无效 / invalid request") and field in message


@pytest.mark.parametrize(
    ("office", "roles", "body_office"),
    [
        ("yanji", ("clerk",), "tumen"),
        ("yanji", ("viewer", "leader"), "yanji"),
        ("yanbian", ("viewer",), "yanji"),
    ],
    ids=[
        "a body for another office than the token's",
        "a token without the clerk role",
        "the prefecture's read-only token",
    ],
)
def test_a_submission_beyond_the_callers_rights_gets_403_and_stores_nothing(
    stack: RunningStack,
    mint: Callable[..., str],
    office: str,
    roles: tuple[str, ...],
    body_office: str,
) -> None:
    body = issue_body(office=body_office, year=fresh_year(stack))
    refused_and_nothing_stored(stack, mint, mint(office, *roles), body, 403)


def test_a_retried_post_with_the_same_idempotency_key_returns_the_first_result(
    stack: RunningStack, mint: Callable[..., str], yanji_clerk: str
) -> None:
    year = fresh_year(stack)
    before = collected(stack, mint, [year])
    key = f"e2e-{uuid.uuid4()}"
    body = issue_body(year=year)

    first = submit(stack, yanji_clerk, body, key)
    retry = submit(stack, yanji_clerk, body, key)

    assert first.status_code == 201, first.text
    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    # A valid issue sent after the retry: when it is visible, anything the retry stored is too.
    probe = submit(stack, yanji_clerk, issue_body(year=year))
    assert probe.status_code == 201, probe.text
    in_projection(stack, yanji_clerk, probe.json()["id"])
    assert collected(stack, mint, [year]) == before + 2


def test_the_same_idempotency_key_with_a_different_body_gets_409(
    stack: RunningStack, mint: Callable[..., str], yanji_clerk: str
) -> None:
    key = f"e2e-{uuid.uuid4()}"
    body = issue_body(year=fresh_year(stack))
    first = submit(stack, yanji_clerk, body, key)
    assert first.status_code == 201, first.text
    in_projection(stack, yanji_clerk, first.json()["id"])

    changed = {**body, "title": "另一个问题"}
    refused_and_nothing_stored(stack, mint, yanji_clerk, changed, 409, key=key)

    kept = httpx.get(
        f"{stack.intake}/issues/{first.json()['id']}", headers=bearer(yanji_clerk), timeout=5
    )
    assert kept.json()["title"] == body["title"]


def test_a_submission_time_without_an_offset_is_china_standard_time(
    stack: RunningStack, yanji_clerk: str
) -> None:
    response = submit(stack, yanji_clerk, issue_body(submitted_at="2020-06-04T15:30:00"))

    assert response.status_code == 201, response.text
    submitted = datetime.fromisoformat(response.json()["submitted_at"])
    assert submitted == datetime(2020, 6, 4, 15, 30, tzinfo=CHINA)


def test_a_reader_waiting_for_an_issue_gets_it_as_soon_as_it_is_projected(
    stack: RunningStack, yanji_clerk: str
) -> None:
    key = f"wait-{uuid.uuid4()}"
    issue_id = issue_id_for("yanji", key)  # known before it is submitted
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            httpx.get,
            f"{stack.projections}/issues/{issue_id}",
            params={"wait": 20},
            headers=bearer(yanji_clerk),
            timeout=30,
        )
        time.sleep(0.3)  # let the reader start waiting before the issue exists
        assert not waiting.done()
        submitted = time.monotonic()
        assert submit(stack, yanji_clerk, issue_body(), key=key).status_code == 201
        answer = waiting.result(timeout=25)
        elapsed = time.monotonic() - submitted

    assert answer.status_code == 200, answer.text
    assert answer.json()["issue_id"] == str(issue_id)
    assert elapsed < 2.0, f"the waiting reader got the issue only after {elapsed:.2f}s"
