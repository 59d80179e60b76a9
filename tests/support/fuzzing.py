"""Schemathesis against a running stack (模糊测试): cases generated from each service's
/openapi.json, sent over real HTTP with valid tokens. A case fails when the service answers
5xx, when its answer does not match the documented schema, or when a refused (4xx) request
changed the service's store. A share of the bodies is sent with one value spoilt in ways a
schema's generator never tries (`SPOILERS`: lone surrogates, control characters, NaN).
Used by tests/e2e/test_fuzz.py and bench/fuzz_soak.py."""

from __future__ import annotations

import contextlib
import json
import math
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from demo.seed import load_seed
from tests.support.http import bearer, issue_body
from tests.support.stack import RunningStack

OFFICE = "yanji"
PREFECTURE = "yanbian"
DEPARTMENT = "住建局"
HALL = "延吉市政协委员协商议事厅"
PAST = "2020-07-20T10:00:00+08:00"
PAST_STEPS = (
    *("submitted", "held", "screened", "closed", "reopened", "corrected", "planned", "added"),
    *("received", "concluded", "cancelled", "postponed", "issued", "reported", "acknowledged"),
    "verified",
)
CHECKS = [not_a_server_error, response_schema_conformance]
SPOILERS = (
    '"\\udc80"',
    '"\\u0000"',
    '"\\u202e"',
    '"\\u001b"',
    "NaN",
    "Infinity",
    "-Infinity",
    "123",
)
"""What JSON generated from a schema never holds, yet a client can send and Python's JSON
reader takes: a lone surrogate, NUL, a right-to-left override, an escape, numbers JSON has
not, and a number where a time is documented."""
SPOIL_SHARE = 0.2
"""The share of cases with a JSON body sent with one value of it spoilt so."""
SERVICES = ("intake", "meetings", "supervision", "projections")


@dataclass
class Target:
    """One service under fuzz: where it answers, and what it stores."""

    name: str
    url: str
    store: Path
    table: str
    tokens: list[str]
    """The first (the office's, every role) for most cases; the others now and then."""
    known: dict[str, list[str]] = field(default_factory=dict)
    """Values of path, query and body fields (`issue_id`, `office`, `token`, ...) that name
    things that exist, so that cases get past the 404 and reach the rules behind it."""


@dataclass
class Report:
    cases: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    stored_before: int = 0
    stored_after: int = 0

    def summary(self) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"{self.cases} cases in {self.seconds:.1f} s ({codes}); stored {self.stored_before}"
            f" → {self.stored_after}; {len(self.failures)} failures"
        )


class Store:
    """The number of rows in the service's store table, read straight from its SQLite file."""

    def __init__(self, path: Path, table: str) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self._query = f"SELECT count(*) FROM {table}"

    def count(self) -> int:
        (n,) = self._db.execute(self._query).fetchone()
        return int(n)

    def close(self) -> None:
        self._db.close()


def wait_quiet(stores: list[Path], table_of: Callable[[Path], str], settle: float = 1.0) -> None:
    """Until no store has changed for `settle` seconds: what a service consumes from
    another's stream lands before the next service is fuzzed, not during its run."""
    opened = [Store(path, table_of(path)) for path in stores]
    try:
        last = [s.count() for s in opened]
        since = time.monotonic()
        deadline = since + 30
        while time.monotonic() - since < settle:
            assert time.monotonic() < deadline, "the stores did not settle within 30 s"
            time.sleep(0.1)
            now = [s.count() for s in opened]
            if now != last:
                last, since = now, time.monotonic()
    finally:
        for s in opened:
            s.close()


def _aim(case: Case, rng: random.Random, target: Target) -> None:
    """Point most of a case's fields at things that exist. A random of our own rather than
    hypothesis draws, which lean towards the first choice."""
    for fields in (case.path_parameters, case.query, case.body):
        if isinstance(fields, dict):
            for name in list(fields):
                if name in target.known and rng.random() < 0.75:
                    fields[name] = rng.choice(target.known[name])


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for n, item in enumerate(value) for leaf in _leaves(item, (*path, n))]
    return [path]


def spoilt(body: Any, rng: random.Random) -> bytes:
    """The body as JSON with one of its values (or the whole, if it has none) written as
    one of `SPOILERS`, as is."""
    raw = rng.choice(SPOILERS)
    place = rng.choice(_leaves(body) or [()])
    if not place:
        return raw.encode()
    marker = "\u0000SPOILT\u0000"
    copy = json.loads(json.dumps(body))
    holder = copy
    for step in place[:-1]:
        holder = holder[step]
    holder[place[-1]] = marker
    return json.dumps(copy).replace(json.dumps(marker), raw).encode()


def fuzz(target: Target, cases: int, random_seed: int, under: str = "") -> Report:
    """At least `cases` generated cases over every operation of `target` (whose path starts
    with `under`), half valid by the schema and half not; returns what was seen, failures
    included (never raises on them)."""
    schema = schemathesis.openapi.from_url(f"{target.url}/openapi.json")
    operations = [
        operation
        for result in schema.get_all_operations()
        if (operation := result.ok()).path.startswith(under)
    ]
    session = requests.Session()
    store = Store(target.store, target.table)
    report = Report(stored_before=store.count())
    started = time.monotonic()

    rng = random.Random(random_seed)

    def run_one(case: Case, valid: bool) -> None:
        # Mostly the office's own token with every role; now and then another.
        token = target.tokens[0] if rng.random() < 0.75 else rng.choice(target.tokens[1:])
        if valid:
            _aim(case, rng, target)
        if isinstance(case.query, dict) and isinstance(case.query.get("wait"), int | float):
            # Long polling (`GET /issues/{id}?wait=`) for ids that never appear: valid, slow.
            case.query["wait"] = 0
        before = store.count()
        sent = ""
        request = case.as_transport_kwargs(base_url=target.url, headers=bearer(token))
        if "json" in request and rng.random() < SPOIL_SHARE:
            request["data"] = spoilt(request.pop("json"), rng)
            request["headers"] = {**request["headers"], "Content-Type": "application/json"}
            sent = f"\n  sent instead: {request['data'].decode()[:500]}"
            response = session.request(**request, timeout=30)
        else:
            response = case.call(
                base_url=target.url, session=session, headers=bearer(token), timeout=30
            )
        after = store.count()
        report.cases += 1
        report.statuses[response.status_code] += 1
        problems = []
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as failed:
            problems.extend(str(failure).strip() for failure in failed.exceptions)
        if 400 <= response.status_code < 500 and after != before:
            problems.append(f"refused with {response.status_code}, yet stored {after - before}")
        if problems:
            report.failures.append(
                f"{case.operation.label} → {response.status_code}: {' | '.join(problems)}\n"
                f"  {response.text[:500]}\n  {case.as_curl_command(base_url=target.url)}{sent}"
            )

    try:
        # A pair that gives fewer cases than asked has none left to give (an operation with
        # no parameters, or nothing to get wrong): it sits out the later rounds.
        active = [
            (operation, mode)
            for operation in operations
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
        rounds = 0
        while report.cases < cases and active:
            share = math.ceil((cases - report.cases) / len(active)) + 2
            for operation, mode in list(active):
                run = _runner(operation, mode, share, random_seed + rounds, run_one)
                sent = report.cases
                with contextlib.suppress(Unsatisfiable):
                    run()
                if report.cases - sent < share:
                    active.remove((operation, mode))
            rounds += 1
    finally:
        report.seconds = time.monotonic() - started
        report.stored_after = store.count()
        store.close()
        session.close()
    return report


def _runner(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    examples: int,
    random_seed: int,
    run_one: Callable[[Case, bool], None],
) -> Callable[[], None]:
    """A hypothesis test sending `examples` cases of one operation; it only generates (no
    shrinking, no example database): `run_one` records failures instead of raising them."""

    @seed(random_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case) -> None:
        run_one(case, mode.is_positive)

    return run


def store_table(path: Path) -> str:
    return "facts" if path.name.startswith("projections") else "stored_events"


def targets(
    stack: RunningStack, mint: Callable[..., str], known: dict[str, list[str]]
) -> dict[str, Target]:
    staff = mint(OFFICE, "clerk", "leader", "meetings", "supervisor", "viewer", "admin")
    prefecture = mint(PREFECTURE, "clerk", "leader", "meetings", "supervisor", "viewer")
    department = mint(OFFICE, "department", department=DEPARTMENT)
    data = stack.data_dir

    def target(name: str, url: str, file: str, tokens: list[str]) -> Target:
        path = data / file
        return Target(name, url, path, store_table(path), tokens, known)

    return {
        "intake": target("intake", stack.intake, "intake.sqlite", [staff, prefecture]),
        "meetings": target("meetings", stack.meetings, "meetings.sqlite", [staff, prefecture]),
        "supervision": target(
            "supervision", stack.supervision, "supervision.sqlite", [staff, department, prefecture]
        ),
        "projections": target(
            "projections", stack.projections, "projections.sqlite", [staff, prefecture]
        ),
    }


# --- the stack's data, so that cases find something behind the ids -----------------------------


def _ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code in (200, 201), f"{answer.request.url}: {answer.text}"
    result: dict[str, Any] = answer.json()
    return result


def seed_stack(stack: RunningStack, mint: Callable[..., str]) -> dict[str, list[str]]:
    """A little of everything through the public APIs: an activity, issues in several states,
    the meetings reference data and a planned meeting, a supervision case from a referral."""
    staff = mint(OFFICE, "clerk", "leader", "meetings", "supervisor")
    with httpx.Client(headers=bearer(staff), timeout=30) as http:
        activity = _ok(
            http.post(
                f"{stack.intake}/activities",
                json={
                    "office": OFFICE,
                    "held_at": "2020-06-04T14:30:00+08:00",
                    "community": "进学社区",
                    "members": ["金英哲", "李明华"],
                },
            )
        )
        issues = [
            _ok(http.post(f"{stack.intake}/issues", json=issue_body(OFFICE)))["id"]
            for _ in range(4)
        ]
        screen = f"{stack.intake}/issues/{{}}/screening"
        _ok(http.post(screen.format(issues[1]), json={"decision": "topic"}))
        _ok(
            http.post(
                screen.format(issues[2]),
                json={
                    "decision": "refer",
                    "screened_at": "2020-06-20T09:00:00+08:00",
                    "department": DEPARTMENT,
                    "deadline": "2020-09-30",
                },
            )
        )
        _ok(http.post(screen.format(issues[3]), json={"decision": "answered", "answer": "已答复"}))

        meetings = httpx.Client(base_url=stack.meetings, headers=bearer(staff), timeout=30)
        with meetings:
            load_seed(meetings)
            meeting = _ok(
                meetings.post(
                    "/meetings",
                    json={
                        "office": OFFICE,
                        "kind": "thematic",
                        "title": "无物业小区管理专题协商会",
                        "theme": "老旧小区无物业管理",
                        "starts_at": "2020-07-16T14:30:00+08:00",
                        "ends_at": "2020-07-16T17:00:00+08:00",
                        "venue": HALL,
                        "planned_at": "2020-07-01T09:00:00+08:00",
                    },
                )
            )
            _ok(meetings.post(f"/meetings/{meeting['id']}/topics", json={"issue_id": issues[1]}))
            _ok(
                meetings.post(
                    f"/meetings/{meeting['id']}/invitations",
                    json={"person_id": "yanji-member-01"},
                )
            )

        deadline = time.monotonic() + 15
        while not (found := _ok(http.get(f"{stack.supervision}/cases"))["items"]):
            assert time.monotonic() < deadline, "no case opened from the referral in 15 s"
            time.sleep(0.1)
    return {
        "office": [OFFICE],
        "category": ["城市管理"],
        "department": [DEPARTMENT],
        "venue": [HALL],
        # A time in the past after everything seeded: most generated times lie in the future.
        **{f"{step}_at": [PAST] for step in PAST_STEPS},
        "starts_at": ["2020-08-03T09:00:00+08:00"],
        "ends_at": ["2020-08-03T11:00:00+08:00"],
        "deadline": ["2020-12-31"],
        "activity_id": [activity["id"]],
        "issue_id": issues,
        "duplicate_of": issues,
        "meeting_id": [meeting["id"]],
        "person_id": ["yanji-member-01", "yanji-member-02", "yanji-expert-01"],
        "case_id": [found[0]["id"]],
        "sequence": ["1"],
        "year": ["2020"],
        "token": [mint(OFFICE, "viewer")],
    }
