"""Who may call what (访问控制矩阵), read off one table and checked on the real stack.

Every route of the five services (`shangliang up`, real HTTP) is called by every role from
the object's own office (yanji), another county (tumen) and the prefecture (yanbian), and
without a token. Each answer must be exactly what `MATRIX` says: allowed, 403 for a missing
role, 404 for another office's object (so its ids do not leak), 401 with no token. The
objects are one of each kind in yanji: an activity, an issue, a meeting, a supervision case
with its letter.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl
from uuid import uuid4

import httpx
import jwt
import pytest

from services.console.main import accounts_of
from services.console.settings import ConsoleSettings
from shared.auth import ROLES, Authenticator
from shared.clock import CHINA
from shared.contracts import Envelope, MeetingConcludedV1, Outcome
from shared.settings import Settings
from tests.support.http import bearer
from tests.support.stack import RunningStack
from tests.support.streams import publish_as_relay

YANJI, TUMEN, PREFECTURE = "yanji", "tumen", "yanbian"
DEPARTMENT = "延吉市住房和城乡建设局"
OTHER_DEPARTMENT = "延吉市城市管理局"

ALL = frozenset(ROLES)
READERS = ALL - {"department"}
CLERK, LEADER, MEETINGS = frozenset({"clerk"}), frozenset({"leader"}), frozenset({"meetings"})
SUPERVISOR, DEPARTMENT_ROLE = frozenset({"supervisor"}), frozenset({"department"})
ADMIN = frozenset({"admin"})
VERIFIERS, VIEWER = frozenset({"supervisor", "leader"}), frozenset({"viewer"})

# How the caller's office decides, for the yanji object a route names:
PUBLIC = "public"  # no token needed
READ = "read"  # yanji and the prefecture read it; tumen gets 404
ACT = "act"  # only yanji acts on it; tumen gets 404, the prefecture (which reads it) 403
CREATE = "create"  # the request names yanji: only yanji may; the others 403
OWN = "own"  # the caller's own office's data: nothing to refuse by office
CASE = "case"  # as READ; a department user only on its own department's case (else 404)

# fmt: off
MATRIX: list[tuple[str, str, frozenset[str], str]] = [
    # service      request                                              roles allowed   scope
    ("intake",      "POST /activities",                                 CLERK,      CREATE),
    ("intake",      "POST /activities/{activity_id}/corrections",       CLERK,      ACT),
    ("intake",      "GET /activities?office=yanji",                     READERS,    READ),
    ("intake",      "GET /activities/{activity_id}",                    READERS,    READ),
    ("intake",      "GET /activities/{activity_id}/history",            READERS,    READ),
    ("intake",      "POST /issues",                                     CLERK,      CREATE),
    ("intake",      "POST /issues/{issue_id}/screening",                LEADER,     ACT),
    ("intake",      "POST /issues/{issue_id}/close",                    LEADER,     ACT),
    ("intake",      "POST /issues/{issue_id}/reopen",                   LEADER,     ACT),
    ("intake",      "GET /issues?office=yanji",                         READERS,    READ),
    ("intake",      "GET /issues/{issue_id}",                           READERS,    READ),
    ("intake",      "GET /issues/{issue_id}/history",                   READERS,    READ),
    ("intake",      "GET /categories",                                  READERS,    OWN),
    ("intake",      "POST /imports/{kind}?office=yanji",                CLERK,      CREATE),
    ("intake",      "GET /imports/{kind}/template.xlsx",                READERS,    OWN),
    ("intake",      "POST /issues/{issue_id}/callbacks",                CLERK,      ACT),
    ("intake",      "GET /callbacks/due?office=yanji",                  READERS,    READ),
    ("intake",      "POST /open311/keys",                               ADMIN,      CREATE),
    ("intake",      "POST /open311/keys/{key_id}/revocation",           ADMIN,      ACT),
    *[("intake", f"GET /open311/v2/{route}?jurisdiction_id=yanji", ALL, PUBLIC)
      for route in ("services.{fmt}", "services/{service_code}.{fmt}", "requests.{fmt}",
                    "requests/{service_request_id}.{fmt}", "tokens/{token}.{fmt}")],
    ("intake",      "POST /open311/v2/requests.{fmt}",                  ALL,        PUBLIC),
    ("intake",      "GET /track/{code}",                                ALL,        PUBLIC),
    ("intake",      "GET /track/{code}/page",                           ALL,        PUBLIC),
    ("meetings",    "POST /meetings",                                   MEETINGS,   CREATE),
    ("meetings",    "GET /meetings?office=yanji",                       READERS,    READ),
    ("meetings",    "GET /meetings/{meeting_id}",                       READERS,    READ),
    ("meetings",    "GET /meetings/{meeting_id}/history",               READERS,    READ),
    ("meetings",    "POST /meetings/{meeting_id}/topics",               MEETINGS,   ACT),
    ("meetings",    "DELETE /meetings/{meeting_id}/topics/{issue_id}",  MEETINGS,   ACT),
    ("meetings",    "POST /meetings/{meeting_id}/invitations",          MEETINGS,   ACT),
    ("meetings",    "POST /meetings/{meeting_id}/invitations/{person_id}/reply",
                                                                        MEETINGS,   ACT),
    ("meetings",    "POST /meetings/{meeting_id}/held",                 MEETINGS,   ACT),
    ("meetings",    "POST /meetings/{meeting_id}/opinions",             MEETINGS,   ACT),
    ("meetings",    "POST /meetings/{meeting_id}/close",                MEETINGS,   ACT),
    ("meetings",    "POST /meetings/{meeting_id}/conclusion",           MEETINGS,   ACT),
    ("meetings",    "POST /meetings/{meeting_id}/postpone",             MEETINGS,   ACT),
    ("meetings",    "POST /meetings/{meeting_id}/cancel",               MEETINGS,   ACT),
    ("meetings",    "POST /people",                                     MEETINGS,   OWN),
    ("meetings",    "POST /venues",                                     MEETINGS,   OWN),
    ("meetings",    "POST /departments",                                MEETINGS,   OWN),
    ("meetings",    "GET /people?office=yanji",                         READERS,    READ),
    ("meetings",    "GET /venues?office=yanji",                         READERS,    READ),
    ("meetings",    "GET /departments?office=yanji",                    READERS,    READ),
    # A calendar URL carries its token as `?token=`, and only a viewer token.
    ("meetings",    "GET /calendar/people/{person_id}.ics",             VIEWER,     OWN),
    ("meetings",    "GET /calendar/{office}.ics",                       VIEWER,     READ),
    ("supervision", "GET /cases?office=yanji",                          ALL,        READ),
    ("supervision", "GET /cases/{case_id}",                             ALL,        CASE),
    ("supervision", "GET /cases/{case_id}/history",                     ALL,        CASE),
    ("supervision", "GET /cases/{case_id}/letters/{sequence}.docx",     ALL,        CASE),
    ("supervision", "POST /cases/{case_id}/letters",                    SUPERVISOR, ACT),
    ("supervision", "POST /cases/{case_id}/acknowledgement",            DEPARTMENT_ROLE, CASE),
    ("supervision", "POST /cases/{case_id}/progress",                   DEPARTMENT_ROLE, CASE),
    ("supervision", "POST /cases/{case_id}/follow-ups",                 SUPERVISOR, ACT),
    ("supervision", "POST /cases/{case_id}/completion",                 DEPARTMENT_ROLE, CASE),
    ("supervision", "POST /cases/{case_id}/verification",               VERIFIERS,  ACT),
    ("supervision", "POST /cases/{case_id}/send-back",                  VERIFIERS,  ACT),
    ("supervision", "POST /scheduler/scan",                             SUPERVISOR, OWN),
    ("projections", "GET /issues?office=yanji",                         READERS,    READ),
    ("projections", "GET /issues?office=yanji&format=csv",              READERS,    READ),
    ("projections", "GET /issues/{issue_id}",                           READERS,    READ),
    ("projections", "GET /statistics/years?office=yanji",               READERS,    READ),
    ("projections", "GET /statistics/{year}",                           READERS,    OWN),
    ("projections", "GET /statistics/{year}?office=yanji&format=xlsx",  READERS,    READ),
    ("projections", "GET /statistics/{year}/breakdown?office=yanji",    READERS,    READ),
    ("projections", "GET /statistics/{year}/{figure}?office=yanji",     READERS,    READ),
    ("projections", "GET /dashboard",                                   ALL,        PUBLIC),
    ("projections", "GET /dashboard/static/{name}",                     ALL,        PUBLIC),
    # The directory entry of a yanji department: its office's admins and the prefecture's.
    ("notifications", "PUT /recipients/{key}",                ADMIN,      READ),
    ("notifications", "GET /recipients/{key}",                ADMIN,      READ),
    ("notifications", "DELETE /recipients/{key}",             ADMIN,      READ),
    ("notifications", "GET /recipients",                                ADMIN,      OWN),
    # Every caller's inbox holds the yanji meeting's invitation (seed): its own reading.
    ("notifications", "GET /inbox",                                     ALL,        OWN),
    ("notifications", "GET /inbox/unread",                              ALL,        OWN),
    ("notifications", "POST /inbox/{notice_id}/read",                   ALL,        OWN),
    ("notifications", "GET /notifications?office=yanji",                READERS,    READ),
    ("notifications", "GET /deliveries",                                ADMIN,      OWN),
    ("notifications", "GET /deliveries/summary",                        ADMIN,      OWN),
    ("notifications", "GET /dead-letters",                              ADMIN,      OWN),
    ("notifications", "POST /dead-letters/resend",                      ADMIN,      OWN),
    *[(service, f"GET /{probe}", ALL, PUBLIC)
      for service in ("intake", "meetings", "supervision", "projections", "notifications")
      for probe in ("healthz", "readyz", "metrics")],
]
# fmt: on

SERVICES = ("intake", "meetings", "supervision", "projections", "notifications")
KEYS = ["access-matrix-current-key-0123456789abcdef", "access-matrix-previous-key-0123456789ab"]
"""The stack verifies with both (a rotation in progress); the first one signs."""


@pytest.fixture(scope="module")
def event_store() -> dict[str, str]:
    """What the `stack` fixture adds to its environment: SQLite stores (the rules do not
    depend on the store) and two signing keys."""
    return {"SHANGLIANG_SIGNING_KEYS": json.dumps(KEYS)}


@dataclass(frozen=True)
class Caller:
    office: str
    role: str
    department: str | None = None
    signed_roles: tuple[str, ...] | None = None
    """Roles signed into a token by hand, which `mint` refuses to make: no role, or an
    unknown one. Such a token must be refused (401) wherever one is needed."""

    @property
    def name(self) -> str:
        if self.signed_roles is not None:
            return f"{self.office}/roles={list(self.signed_roles)}"
        return f"{self.office}/{self.role}" + (f"({self.department})" if self.department else "")


def callers() -> list[Caller]:
    found = []
    for office in (YANJI, TUMEN, PREFECTURE):
        for role in ROLES:
            department = None
            if role == "department":
                department = DEPARTMENT if office == YANJI else f"{office} 住建局"
            found.append(Caller(office, role, department))
    forged = [Caller(office, "", signed_roles=roles) for office in (YANJI, PREFECTURE)
              for roles in ((), ("root",))]  # fmt: skip
    return [*found, Caller(YANJI, "department", OTHER_DEPARTMENT), *forged]


def expected(roles: frozenset[str], scope: str, caller: Caller | None) -> int | None:
    """The refusal the table gives `caller` (None: allowed)."""
    if scope == PUBLIC:
        return None
    if caller is None or caller.signed_roles is not None:
        return 401
    if caller.role not in roles:
        return 403
    if scope == CASE and caller.role == "department":
        return None if (caller.office, caller.department) == (YANJI, DEPARTMENT) else 404
    if scope in (READ, CASE):
        return 404 if caller.office == TUMEN else None
    if scope == ACT:
        return {YANJI: None, TUMEN: 404, PREFECTURE: 403}[caller.office]
    if scope == CREATE:
        return None if caller.office == YANJI else 403
    return None


ALLOWED = {200, 201, 204, 409, 422}
"""An allowed call may still be refused by the domain (409 the state, 422 a rule), after
the access checks; which of them depends on what earlier rows did to the object."""


# --- the objects and the requests ----------------------------------------------------------


@dataclass
class World:
    stack: RunningStack
    tokens: Authenticator
    ids: dict[str, str]
    clients: dict[str, httpx.Client]

    def token(self, caller: Caller) -> str:
        if caller.signed_roles is not None:
            now = int(time.time())
            claims = {"sub": caller.name, "office": caller.office, "iat": now, "exp": now + 600}
            claims |= {"roles": list(caller.signed_roles), "iss": "shangliang", "aud": "shangliang"}
            return jwt.encode(claims, KEYS[0], algorithm="HS256")
        return self.tokens.mint(
            caller.office, [caller.role], subject=caller.name, department=caller.department
        )

    def path(self, template: str) -> str:
        return template.format(**self.ids)


def body_of(method: str, path: str) -> dict[str, Any]:
    """A well-formed body for the route, so that only access and the domain decide."""
    unique = uuid4().hex[:8]
    if method == "PUT" and path.startswith("/recipients/"):
        return {"name": DEPARTMENT, "emails": [f"zjj-{unique}@yanji.example"]}
    if method != "POST":
        return {}
    bodies: dict[str, dict[str, Any]] = {
        "/activities": {"office": YANJI, "held_at": "2020-06-04T14:30:00+08:00",
                        "members": ["张三"], "community": "进学社区"},
        "/corrections": {"members": ["张三", "李四"], "reason": "补记"},
        "/issues": {"office": YANJI, "title": "小区路灯损坏", "description": f"路灯 {unique}",
                    "category": "城市管理", "submitted_at": "2020-06-04T15:30:00+08:00"},
        "/screening": {"decision": "topic", "screened_at": "2020-06-25T09:00:00+08:00"},
        "/close": {},
        "/reopen": {"reason": "群众再次反映"},
        "/meetings": {"office": YANJI, "kind": "written", "title": f"书面协商 {unique}",
                      "theme": "路灯", "starts_at": "2020-09-01T09:00:00+08:00",
                      "ends_at": "2020-09-15T17:00:00+08:00",
                      "submission_deadline": "2020-09-15T17:00:00+08:00",
                      "planned_at": "2020-08-25T09:00:00+08:00"},
        "/topics": {"issue_id": str(uuid4())},
        "/invitations": {"person_id": "yanji-head-01"},
        "/reply": {"accepted": True},
        "/held": {"attendance": ["yanji-head-01"]},
        "/opinions": {"person_id": "yanji-head-01", "opinion": "同意"},
        "/conclusion": {"outcomes": [{"issue_ids": [str(uuid4())], "recommendation": "修复",
                                      "department": DEPARTMENT, "deadline": "2020-12-31"}]},
        "/postpone": {"starts_at": "2020-10-01T09:00:00+08:00",
                      "ends_at": "2020-10-15T17:00:00+08:00",
                      "submission_deadline": "2020-10-15T17:00:00+08:00", "reason": "改期"},
        "/cancel": {"reason": "取消"},
        "/people": {"name": f"委员{unique}", "kind": "member"},
        "/venues": {"name": f"议事厅{unique}"},
        "/departments": {"name": f"局{unique}"},
        "/letters": {"requirements": "请按期办理", "deadline": "2020-09-30",
                     "issued_at": "2020-07-02T09:00:00"},
        "/acknowledgement": {"acknowledged_at": "2020-07-03T10:00:00"},
        "/progress": {"note": "已排查", "reported_at": "2020-07-20T10:00:00"},
        "/follow-ups": {"kind": "inspection", "held_at": "2020-07-16T14:30:00",
                        "members": ["金委员"]},
        "/completion": {"note": "已修复", "reported_at": "2020-07-28T10:00:00"},
        "/verification": {"verified_at": "2020-08-10T10:00:00"},
        "/send-back": {"reason": "未完成", "deadline": "2020-10-30",
                       "reopened_at": "2020-08-10T10:00:00"},
        "/scan": {},
        "/callbacks": {"reached": True, "satisfaction": "satisfied"},
        "/open311/keys": {"office": YANJI, "label": f"matrix {unique}"},
        "/revocation": {},
        "/read": {},
        "/resend": {"all": True},
    }  # fmt: skip
    for suffix, body in bodies.items():
        if path.endswith(suffix):
            return body
    raise AssertionError(f"no body for POST {path}")


def call(
    world: World, service: str, request: str, caller: Caller | None, token: str | None = None
) -> httpx.Response:
    """The request as `caller` (None: no token), or with the `token` given."""
    method, template = request.split(" ", 1)
    path, _, query = world.path(template).partition("?")
    headers: dict[str, str] = {}
    params = dict(parse_qsl(query))
    if token is None and caller is not None:
        token = world.token(caller)
    if token is not None and "/calendar/" in path:
        params["token"] = token
    elif token is not None:
        headers = bearer(token)
    client = world.clients[service]
    if method == "POST" and path.startswith("/imports/"):
        csv = "编号,活动日期,参加委员\n".encode()
        files = {"file": ("activities.csv", csv, "text/csv")}
        return client.post(path, files=files, headers=headers, params=params)
    if method == "POST" and path.startswith("/open311/v2/"):
        return client.post(path, data=open311_form(world.ids), headers=headers, params=params)
    if method == "DELETE" and path.startswith("/recipients/"):
        # Each caller allowed to delete finds the entry there, put back by a yanji admin.
        admin = world.token(Caller(YANJI, "admin"))
        put = client.put(path, json=body_of("PUT", path), headers=bearer(admin))
        assert put.status_code == 200, put.text
    if method in ("POST", "PUT"):
        return client.request(
            method, path, json=body_of(method, path), headers=headers, params=params
        )
    return client.request(method, path, headers=headers, params=params)


def open311_form(ids: dict[str, str]) -> dict[str, str]:
    """A new Open311 request of yanji (the office of the seeded key)."""
    return {"api_key": ids["api_key"], "service_code": "城市管理", "address_string": "进学街",
            "description": f"路灯不亮 {uuid4().hex[:8]}"}  # fmt: skip


def seed(stack: RunningStack, tokens: Authenticator) -> dict[str, str]:
    """One of each object in yanji, made through the APIs (the case from a concluded
    meeting on the MEETINGS stream, as meetings would publish it)."""

    def as_(role: str, department: str | None = None) -> dict[str, str]:
        return bearer(tokens.mint(YANJI, [role], subject=f"seed-{role}", department=department))

    def created(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    ids: dict[str, str] = {"kind": "activities", "person_id": "yanji-head-01", "office": YANJI}
    ids |= {"sequence": "1", "year": "2020", "figure": "issues_collected"}
    ids["name"] = "dashboard.js"
    activity = httpx.post(
        f"{stack.intake}/activities", json=body_of("POST", "/activities"), headers=as_("clerk")
    )
    ids["activity_id"] = created(activity)["id"]
    issue = httpx.post(
        f"{stack.intake}/issues", json=body_of("POST", "/issues"), headers=as_("clerk")
    )
    ids["issue_id"] = created(issue)["id"]
    key, revoked = (
        created(
            httpx.post(
                f"{stack.intake}/open311/keys",
                json=body_of("POST", "/open311/keys"),
                headers=as_("admin"),
            )
        )
        for _ in range(2)
    )
    # One key the matrix revokes, another its Open311 requests keep using.
    ids |= {"key_id": revoked["id"], "api_key": key["api_key"], "fmt": "json"}
    ids["service_code"] = "城市管理"
    # An Open311 request: public, with the form the spec gives; its token is its tracking code.
    request = httpx.post(f"{stack.intake}/open311/v2/requests.json", data=open311_form(ids))
    assert request.status_code == 201, request.text
    (answer,) = request.json()
    ids |= {"service_request_id": answer["service_request_id"], "token": answer["token"]}
    ids["code"] = answer["token"]
    # Every caller reads the yanji meeting's invitation in its inbox (yanji's staff entry).
    staff = {"name": "延吉市政协机关", "users": [caller.name for caller in callers()]}
    entry = httpx.put(f"{stack.notifications}/recipients/office:yanji", json=staff,
                      headers=as_("admin"))  # fmt: skip
    assert entry.status_code == 200, entry.text
    ids["key"] = f"department:yanji:{DEPARTMENT}"
    meeting = httpx.post(
        f"{stack.meetings}/meetings",
        json=body_of("POST", "/meetings"),
        headers=as_("meetings"),
    )
    ids["meeting_id"] = created(meeting)["id"]
    ids["notice_id"] = invitation(stack, ids["meeting_id"], as_("viewer"))
    ids["case_id"] = asyncio.run(open_case(stack, as_("viewer")))
    letter = httpx.post(
        f"{stack.supervision}/cases/{ids['case_id']}/letters",
        json=body_of("POST", "/letters"),
        headers=as_("supervisor"),
    )
    created(letter)
    projected = httpx.get(
        f"{stack.projections}/issues/{ids['issue_id']}",
        params={"wait": 10},
        headers=as_("viewer"),
        timeout=15,
    )
    assert projected.status_code == 200, projected.text
    return ids


def invitation(stack: RunningStack, meeting_id: str, viewer: dict[str, str]) -> str:
    """The id of the notice inviting yanji's staff to the meeting, once notifications made it."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = httpx.get(
            f"{stack.notifications}/notifications", params={"page_size": 200}, headers=viewer
        ).json()["items"]
        for notice in found:
            if notice["subject_id"] == meeting_id and notice["kind"] == "meeting_invitation":
                return str(notice["id"])
        time.sleep(0.05)
    raise AssertionError("no invitation to the seeded meeting within 15 s")


async def open_case(stack: RunningStack, viewer: dict[str, str]) -> str:
    meeting = MeetingConcludedV1(
        meeting_id=uuid4(),
        offices=[YANJI],
        kind="thematic",
        title="路灯专题协商会",
        concluded_at=datetime(2020, 6, 30, 16, 0, tzinfo=CHINA),
        outcomes=[
            Outcome(
                outcome_id=uuid4(),
                issue_ids=[uuid4()],
                recommendation="请住建局修复路灯",
                department=DEPARTMENT,
                deadline=date(2020, 9, 30),
            )
        ],
    )
    nc = await stack.connect_as("admin")  # an operator: publishes for meetings
    try:
        event_id = str(uuid4())
        subject = meeting.subject(YANJI)
        envelope = Envelope.wrap(event_id, datetime.now(UTC), subject, meeting)
        await publish_as_relay(nc.jetstream(), subject, envelope.to_bytes(), event_id, None)
    finally:
        await nc.close()
    async with httpx.AsyncClient(base_url=stack.supervision) as http:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = await http.get(
                "/cases", params={"meeting_id": str(meeting.meeting_id)}, headers=viewer
            )
            if items := found.json()["items"]:
                return str(items[0]["id"])
            await asyncio.sleep(0.05)
    raise AssertionError("no case opened from the concluded meeting within 10 s")


@pytest.fixture(scope="module")
def world(stack: RunningStack) -> Iterator[World]:
    tokens = Authenticator(Settings(signing_keys=KEYS))
    ids = seed(stack, tokens)
    clients = {s: httpx.Client(base_url=getattr(stack, s), timeout=10) for s in SERVICES}
    try:
        yield World(stack, tokens, ids, clients)
    finally:
        for client in clients.values():
            client.close()


# --- the tests -----------------------------------------------------------------------------


def test_the_matrix_names_every_route_of_every_service(world: World) -> None:
    for service in SERVICES:
        schema = world.clients[service].get("/openapi.json").json()
        routes = {
            f"{method.upper()} {path}" for path, item in schema["paths"].items() for method in item
        }
        named = {request.split("?")[0] for s, request, _, _ in MATRIX if s == service}
        assert routes - named == set(), f"{service}: routes missing from MATRIX"
        assert named - routes - {"GET /metrics"} == set(), f"{service}: MATRIX names no route"


def test_every_route_answers_every_caller_as_the_matrix_says(world: World) -> None:
    wrong = []
    for service, request, roles, scope in MATRIX:
        for caller in [None, *callers()]:
            response = call(world, service, request, caller)
            refusal = expected(roles, scope, caller)
            if scope == PUBLIC:
                ok = response.status_code not in (401, 403, 404)
            elif refusal is None:
                ok = response.status_code in ALLOWED
            else:
                ok = response.status_code == refusal
            if not ok:
                who = "no token" if caller is None else caller.name
                wrong.append(
                    f"{service} {request} as {who}: expected {refusal or 'allowed'}, "
                    f"got {response.status_code} {response.text[:160]}"
                )
            elif refusal is not None:
                assert " / " in response.json()["message"], response.text
    assert wrong == [], "\n".join(wrong)


READS = {
    "intake": "/issues",
    "meetings": "/meetings",
    "supervision": "/cases",
    "projections": "/statistics/2020",
    "notifications": "/notifications",
}


def tokens_with(**changes: Any) -> Authenticator:
    return Authenticator(Settings(**{"signing_keys": KEYS, **changes}))


@pytest.mark.parametrize(
    ("authenticator", "ttl", "code"),
    [
        (tokens_with(), None, 200),
        (tokens_with(signing_keys=KEYS[1:]), None, 200),
        (tokens_with(signing_keys=["a-retired-key-that-no-service-verifies-with"]), None, 401),
        (tokens_with(), -60, 401),
        (tokens_with(token_audience="another-system"), None, 401),
        (tokens_with(token_issuer="someone-else"), None, 401),
    ],
    ids=[
        "signed with the current key",
        "signed with the previous key, during a rotation",
        "signed with a key no service knows",
        "expired a minute ago",
        "for another audience",
        "from another issuer",
    ],
)
def test_every_service_checks_a_tokens_signature_expiry_audience_and_issuer(
    world: World, authenticator: Authenticator, ttl: int | None, code: int
) -> None:
    token = authenticator.mint(YANJI, ["viewer"], subject="token-check", ttl_seconds=ttl)
    for service, path in READS.items():
        answer = world.clients[service].get(path, headers=bearer(token))
        assert answer.status_code == code, (service, answer.text)
        if code == 401:
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert "访问令牌无效 / invalid token" in answer.json()["message"]
    calendar = world.clients["meetings"].get("/calendar/yanji.ics", params={"token": token})
    assert calendar.status_code == code, calendar.text


def test_a_calendar_token_opens_the_two_calendar_feeds_and_is_refused_on_every_other_route(
    world: World,
) -> None:
    token = world.tokens.mint_calendar(YANJI, "calendar-subscription")
    wrong = []
    for service, request, _, scope in MATRIX:
        if scope == PUBLIC:
            continue
        response = call(world, service, request, None, token)
        wanted = 200 if "/calendar/" in request else 401
        if response.status_code != wanted:
            wrong.append(f"{service} {request}: {response.status_code} {response.text[:160]}")
    assert wrong == [], "\n".join(wrong)


def test_a_malformed_authorization_is_401_everywhere(world: World) -> None:
    for service, path in READS.items():
        for header in ("Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer"):
            answer = world.clients[service].get(path, headers={"Authorization": header})
            assert answer.status_code == 401, (service, header, answer.text)


LISTS = [
    ("intake", "/activities"),
    ("intake", "/issues"),
    ("meetings", "/meetings"),
    ("meetings", "/people"),
    ("meetings", "/venues"),
    ("meetings", "/departments"),
    ("supervision", "/cases"),
    ("projections", "/issues"),
    ("projections", "/statistics/2020/issues_collected"),
    ("notifications", "/notifications"),
    ("notifications", "/inbox"),
]


@pytest.mark.parametrize(("service", "path"), LISTS, ids=[f"{s} {p}" for s, p in LISTS])
def test_a_page_larger_than_200_is_a_422_naming_page_size(
    world: World, service: str, path: str
) -> None:
    who = bearer(world.token(Caller(YANJI, "viewer")))
    client = world.clients[service]
    assert client.get(path, params={"page_size": 200}, headers=who).status_code == 200
    refused = client.get(path, params={"page_size": 201}, headers=who)
    assert refused.status_code == 422, refused.text
    assert "page_size" in refused.json()["message"]


def test_a_body_over_the_limit_is_413_in_every_service_and_stores_nothing(world: World) -> None:
    clerk = bearer(world.token(Caller(YANJI, "clerk")))
    limit = Settings().max_body_bytes
    issue = body_of("POST", "/issues")
    padded = {**issue, "note": "x" * limit}
    posts = {
        "intake": "/issues",
        "meetings": "/meetings",
        "supervision": f"/cases/{world.ids['case_id']}/progress",
        "projections": "/issues",
    }
    before = world.clients["intake"].get("/issues", headers=clerk).json()["total"]
    for service, path in posts.items():
        answer = world.clients[service].post(path, json=padded, headers=clerk)
        assert answer.status_code == 413, (service, answer.text)
        assert f"{limit}" in answer.json()["message"] and " / " in answer.json()["message"]
    assert world.clients["intake"].get("/issues", headers=clerk).json()["total"] == before


def test_a_spreadsheet_import_may_be_larger_than_other_bodies(world: World) -> None:
    clerk = bearer(world.token(Caller(YANJI, "clerk")))
    limit = Settings().max_body_bytes
    rows = "编号,活动日期,参加委员\n" + "".join(
        f"A{n},2020-06-04,张三\n" for n in range(limit // 20)
    )
    assert len(rows.encode()) > limit
    upload = {"file": ("activities.csv", rows.encode(), "text/csv")}
    answer = world.clients["intake"].post("/imports/activities", files=upload, headers=clerk)
    assert answer.status_code in (200, 422), answer.text
    assert answer.status_code != 413


HOSTILE_TEXT = {"\udc80": "U+DC80", "路灯\x00": "U+0000", "\u202e灯路": "U+202E"}
"""A lone surrogate (valid JSON, `"\\udc80"`, but not Unicode), NUL, a right-to-left override."""
NON_FINITE = ["NaN", "Infinity", "-Infinity"]
"""What Python's JSON reader takes although JSON has no such numbers."""


def leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every text, number and truth value in a body."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path


def replaced(body: Any, path: tuple[str | int, ...], raw: str) -> str:
    """The body as JSON text with the value at `path` written as `raw`, as is."""
    marker = "\u0000MARK\u0000"
    copy = json.loads(json.dumps(body))
    place = copy
    for step in path[:-1]:
        place = place[step]
    place[path[-1]] = marker
    return json.dumps(copy).replace(json.dumps(marker), raw)


def writes(world: World) -> Iterator[tuple[str, str, str, dict[str, Any], dict[str, str]]]:
    """Every JSON write of every service, with a well-formed body and a caller allowed it."""
    for service, request, roles, _ in MATRIX:
        method, template = request.split(" ", 1)
        path = world.path(template).partition("?")[0]
        # Not JSON: an import is a file, Open311's a form refused in Open311's own terms.
        if method not in ("POST", "PUT") or path.startswith(("/imports/", "/open311/v2/")):
            continue
        role = sorted(roles)[0]
        department = DEPARTMENT if role == "department" else None
        yield (
            service,
            method,
            path,
            body_of(method, path),
            bearer(world.token(Caller(YANJI, role, department))),
        )


def test_every_write_refuses_bad_text_and_non_finite_numbers_as_422_naming_the_field(
    world: World,
) -> None:
    wrong = []
    for service, method, path, body, who in writes(world):
        headers = {**who, "Content-Type": "application/json"}
        for place in leaves(body):
            if not place:
                continue  # an empty body: nothing to spoil
            field = next(str(step) for step in reversed(place) if isinstance(step, str))
            spoilt = [json.dumps(text) for text in HOSTILE_TEXT] + NON_FINITE
            for raw in spoilt:
                answer = world.clients[service].request(
                    method, path, content=replaced(body, place, raw), headers=headers
                )
                if answer.status_code != 422 or field not in answer.json()["message"]:
                    wrong.append(
                        f"{service} {path} {field}={raw}: {answer.status_code} {answer.text[:200]}"
                    )
    assert wrong == [], "\n".join(wrong[:30])


def test_every_back_dated_field_refuses_a_number_as_422(world: World) -> None:
    wrong = []
    for service, method, path, body, who in writes(world):
        headers = {**who, "Content-Type": "application/json"}
        for place in leaves(body):
            field = str(place[-1]) if place else ""
            if not (field.endswith("_at") or field == "deadline"):
                continue
            for raw in ("123", "-1", "0.5", '"123"', "true"):
                answer = world.clients[service].request(
                    method, path, content=replaced(body, place, raw), headers=headers
                )
                if answer.status_code != 422 or field not in answer.json()["message"]:
                    wrong.append(
                        f"{service} {path} {field}={raw}: {answer.status_code} {answer.text[:200]}"
                    )
    assert wrong == [], "\n".join(wrong[:30])


def test_an_issue_title_with_emoji_line_breaks_and_tabs_is_stored_as_sent(world: World) -> None:
    title = "路灯不亮 💡👨‍👩‍👧 🏴󠁧󠁢󠁳󠁣󠁴󠁿"
    body = {**body_of("POST", "/issues"), "title": title, "description": "第一行\r\n\t第二行"}
    clerk = bearer(world.token(Caller(YANJI, "clerk")))
    stored = world.clients["intake"].post("/issues", json=body, headers=clerk)
    assert stored.status_code == 201, stored.text
    assert stored.json()["title"] == title
    assert stored.json()["description"] == body["description"]


# --- the workbench (console) --------------------------------------------------------------------

CASE_READERS = frozenset({"supervisor", "leader", "department", "viewer", "admin"})
LOGIN = "login"  # the login form itself: it has its own CSRF cookie (tests/e2e/test_console.py)
STEP = re.compile(r"^(POST /(?:cases/\{case_id\}|meetings/\{meeting_id\})/)[a-z-]+$")

# fmt: off
CONSOLE_MATRIX: list[tuple[str, frozenset[str], str]] = [
    # request                                       roles allowed   scope
    ("GET /login",                                  ALL,            PUBLIC),
    ("POST /login",                                 ALL,            LOGIN),
    ("GET /lang/{lang}",                            ALL,            PUBLIC),
    ("GET /",                                       ALL,            OWN),
    ("GET /password",                               ALL,            OWN),
    ("POST /password",                              ALL,            OWN),
    ("GET /issues",                                 READERS,        OWN),
    ("GET /issues/new",                             CLERK,          OWN),
    ("POST /issues/new",                            CLERK,          OWN),
    ("GET /issues/{issue_id}",                      READERS,        READ),
    ("GET /issues/{issue_id}/originals",            LEADER,         OWN),
    ("POST /issues/{issue_id}/screening",           LEADER,         ACT),
    ("POST /issues/{issue_id}/close",               LEADER,         ACT),
    ("POST /issues/{issue_id}/reopen",              LEADER,         ACT),
    ("POST /issues/{issue_id}/callbacks",           CLERK,          ACT),
    ("GET /callbacks",                              READERS,        OWN),
    ("GET /screening",                              LEADER,         OWN),
    ("GET /activities/new",                         CLERK,          OWN),
    ("GET /activities/members",                     CLERK,          OWN),
    ("POST /activities/new",                        CLERK,          OWN),
    ("GET /imports",                                CLERK,          OWN),
    ("POST /imports",                               CLERK,          OWN),
    ("GET /imports/template/{kind}",                CLERK,          OWN),
    ("GET /cases",                                  CASE_READERS,   OWN),
    ("GET /cases/{case_id}",                        CASE_READERS,   CASE),
    ("GET /cases/{case_id}/letters/{sequence}.docx", CASE_READERS,  CASE),
    ("POST /cases/{case_id}/letters",               SUPERVISOR,     ACT),
    ("POST /cases/{case_id}/follow-ups",            SUPERVISOR,     ACT),
    ("POST /cases/{case_id}/verification",          VERIFIERS,      ACT),
    ("POST /cases/{case_id}/send-back",             VERIFIERS,      ACT),
    ("POST /cases/{case_id}/acknowledgement",       DEPARTMENT_ROLE, CASE),
    ("POST /cases/{case_id}/progress",              DEPARTMENT_ROLE, CASE),
    ("POST /cases/{case_id}/completion",            DEPARTMENT_ROLE, CASE),
    ("GET /meetings",                               READERS,        OWN),
    ("GET /meetings/new",                           MEETINGS,       OWN),
    ("POST /meetings/new",                          MEETINGS,       OWN),
    ("GET /meetings/{meeting_id}",                  READERS,        READ),
    *[(f"POST /meetings/{{meeting_id}}/{step}",     MEETINGS,       ACT)
      for step in ("topics", "invitations", "held", "opinions", "close", "postpone", "cancel",
                   "conclusion")],
    ("GET /healthz",                                ALL,            PUBLIC),
    ("GET /readyz",                                 ALL,            PUBLIC),
    ("GET /metrics",                                ALL,            PUBLIC),
    # Last: it ends each caller's session.
    ("POST /logout",                                ALL,            OWN),
]
# fmt: on
CONSOLE_ALLOWED = {200, 303, 409, 422}
"""A page, a write done (303 to its result) or refused by the domain, shown on the form."""


def console_callers() -> list[Caller]:
    """Every role of yanji, a county leader and a department user of another department:
    the console's own refusals are by role; by office and department it shows the API's."""
    own = [Caller(YANJI, role, DEPARTMENT if role == "department" else None) for role in ROLES]
    return [*own, Caller(TUMEN, "leader"), Caller(YANJI, "department", OTHER_DEPARTMENT)]


def console_expected(roles: frozenset[str], scope: str, caller: Caller | None) -> int | None:
    if scope == PUBLIC:
        return None
    if caller is None:
        return 303  # to the login page
    if caller.role not in roles:
        return 403
    if scope in (OWN, LOGIN):
        return None
    return expected(roles, READ if scope == ACT else scope, caller)


def logged_in(world: World, caller: Caller) -> tuple[httpx.Client, str]:
    """A browser-like client with a session of an account for `caller`, and its CSRF token."""
    name = f"matrix-{caller.office}-{caller.role}-{abs(hash(caller.department)) % 1000}"
    accounts = accounts_of(Settings(data_dir=world.stack.data_dir), ConsoleSettings())
    if accounts.store.get(name) is None:
        accounts.add(name, caller.office, [caller.role], "matrix-password", caller.department)
    client = httpx.Client(base_url=world.stack.console, timeout=10)
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None, form.text
    answer = client.post(
        "/login", data={"csrf": token[1], "name": name, "password": "matrix-password"}
    )
    assert answer.status_code == 303, answer.text
    home = client.get("/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert csrf is not None, home.text
    return client, csrf[1]


def console_call(
    world: World, request: str, client: httpx.Client, csrf: str | None
) -> httpx.Response:
    method, template = request.split(" ", 1)
    path = template.format(**{**world.ids, "lang": "en"})
    if method == "GET":
        return client.get(path)
    fields = {"csrf": csrf} if csrf else {}
    return client.post(path, data=fields)


def test_the_console_matrix_names_every_route_of_the_console(world: World) -> None:
    schema = httpx.get(f"{world.stack.console}/openapi.json", timeout=10).json()
    routes = {
        f"{method.upper()} {path}" for path, item in schema["paths"].items() for method in item
    }
    named = {STEP.sub(r"\1{step}", request) for request, _, _ in CONSOLE_MATRIX}
    assert routes - named == set(), "console: routes missing from CONSOLE_MATRIX"
    assert named - routes - {"GET /metrics"} == set(), "console: CONSOLE_MATRIX names no route"


def test_every_console_page_answers_every_caller_as_the_matrix_says(world: World) -> None:
    sessions = {caller: logged_in(world, caller) for caller in console_callers()}
    anonymous = httpx.Client(base_url=world.stack.console, timeout=10)
    wrong = []
    try:
        for request, roles, scope in CONSOLE_MATRIX:
            if scope == LOGIN:
                continue
            for caller in [None, *sessions]:
                client, csrf = (anonymous, None) if caller is None else sessions[caller]
                response = console_call(world, request, client, csrf)
                refusal = console_expected(roles, scope, caller)
                if refusal is None:
                    ok = response.status_code in CONSOLE_ALLOWED
                elif refusal == 303:
                    ok = response.status_code == 303 and response.headers["location"].startswith(
                        "/login"
                    )
                else:
                    ok = response.status_code == refusal and "refusal" in response.text
                if not ok:
                    who = "no session" if caller is None else caller.name
                    wrong.append(
                        f"console {request} as {who}: expected {refusal or 'allowed'}, "
                        f"got {response.status_code} {response.text[:160]}"
                    )
    finally:
        for client, _ in sessions.values():
            client.close()
        anonymous.close()
    assert wrong == [], "\n".join(wrong)


def test_every_console_form_without_its_csrf_token_is_refused(world: World) -> None:
    for request, roles, scope in CONSOLE_MATRIX:
        if not request.startswith("POST") or scope == LOGIN:
            continue
        role = sorted(roles)[0]
        client, _ = logged_in(
            world, Caller(YANJI, role, DEPARTMENT if role == "department" else None)
        )
        try:
            answer = console_call(world, request, client, None)
        finally:
            client.close()
        assert answer.status_code == 403, (request, answer.text[:300])
        assert "CSRF" in answer.text
