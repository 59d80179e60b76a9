"""An issue's whole life on the real stack (`shangliang up`), over HTTP only, the way an
office works: the clerk records it, the leading group screens it, a meeting consults on it or
it is referred, supervision follows the department to verification, and intake shows it
resolved. The test publishes nothing on NATS: every hand-over between services is theirs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from demo.seed import load_seed
from tests.support.http import bearer, issue_body
from tests.support.stack import RunningStack

OFFICE = "yanji"
# The tests share the office's letter registers, which number letters in date order: each test
# that issues letters dates its case in a year of its own (2020, 2021, 2022, 2023).
HALL = "延吉市政协委员协商议事厅"
LETTER_NUMBER = re.compile(r"延市政协督〔20\d\d〕[1-9]\d*号")
HAND_OVER_TIMEOUT = 10.0
"""How long one service may take to hear of another's event."""


@dataclass
class Office:
    """One HTTP client per desk of the Yanji office, each with its own role's token."""

    clerk: httpx.Client
    leader: httpx.Client
    meetings: httpx.Client
    supervisor: httpx.Client
    viewer: httpx.Client
    department: Callable[[str], httpx.Client]
    read_side: httpx.Client


@pytest.fixture(scope="module")
def office(stack: RunningStack, mint: Callable[..., str]) -> Iterator[Office]:
    clients: list[httpx.Client] = []

    def client(url: str, token: str) -> httpx.Client:
        clients.append(httpx.Client(base_url=url, headers=bearer(token), timeout=10))
        return clients[-1]

    def department(name: str) -> httpx.Client:
        return client(stack.supervision, mint(OFFICE, "department", department=name))

    desks = Office(
        clerk=client(stack.intake, mint(OFFICE, "clerk")),
        leader=client(stack.intake, mint(OFFICE, "leader")),
        meetings=client(stack.meetings, mint(OFFICE, "meetings")),
        supervisor=client(stack.supervision, mint(OFFICE, "supervisor")),
        viewer=client(stack.intake, mint(OFFICE, "viewer")),
        department=department,
        read_side=client(stack.projections, mint(OFFICE, "viewer")),
    )
    try:
        yield desks
    finally:
        for each in clients:
            each.close()


def answer_of(response: httpx.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, (response.request.url, response.text)
    return response.json()  # type: ignore[no-any-return]


def same_moment(shown: str, expected: str) -> bool:
    return datetime.fromisoformat(shown) == datetime.fromisoformat(expected)


def eventually(
    fetch: Callable[[], httpx.Response], done: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """The first 200 answer of `fetch` that is `done`, within the hand-over timeout."""
    deadline = time.monotonic() + HAND_OVER_TIMEOUT
    while True:
        answer = answer_of(fetch(), 200)
        if done(answer):
            return answer
        assert time.monotonic() < deadline, f"{what} within {HAND_OVER_TIMEOUT}s: {answer}"
        time.sleep(0.1)


def submit(office: Office, title: str, submitted_at: str) -> dict[str, Any]:
    body = issue_body(OFFICE, title=title, submitted_at=submitted_at, key_problem=True)
    issue = answer_of(office.clerk.post("/issues", json=body), 201)
    assert (issue["status"], issue["key_problem"], issue["title"]) == ("submitted", True, title)
    return issue


def screen(office: Office, issue_id: str, **decision: Any) -> dict[str, Any]:
    issue = answer_of(office.leader.post(f"/issues/{issue_id}/screening", json=decision), 200)
    assert issue["screening"]["decision"] == decision["decision"], issue
    return issue


def resolved_by_case(office: Office, issue_id: str, case_id: str) -> dict[str, Any]:
    """Intake's view of the issue once supervision's verification reached it."""
    issue = eventually(
        lambda: office.viewer.get(f"/issues/{issue_id}"),
        lambda issue: issue["status"] == "resolved",
        "intake did not resolve the issue from the verified case",
    )
    assert issue["resolved_via"] == "case", issue
    last_step = issue["history"][-1]
    assert (last_step["event"], last_step["case_id"]) == ("Resolved", case_id), issue["history"]
    return issue


def supervise_to_verification(
    office: Office, case: dict[str, Any], letter: dict[str, Any], steps: dict[str, str]
) -> dict[str, Any]:
    """The letter, the department's answers and the office's verification, as on paper."""
    path = f"/cases/{case['id']}"
    issued = answer_of(
        office.supervisor.post(
            f"{path}/letters", json={"requirements": case["requirements"], **letter}
        ),
        201,
    )
    year = int(letter["issued_at"][:4])
    assert LETTER_NUMBER.fullmatch(issued["number"]) and f"〔{year}〕" in issued["number"], issued
    assert (issued["case_id"], issued["department"], issued["year"]) == (
        case["id"],
        case["department"],
        year,
    )
    department = office.department(case["department"])
    too_soon = office.supervisor.post(f"{path}/verification", json={})
    assert too_soon.status_code == 409 and "letter_issued" in too_soon.json()["detail"], too_soon
    acknowledged = answer_of(
        department.post(f"{path}/acknowledgement", json={"acknowledged_at": steps["ack"]}), 200
    )
    assert acknowledged["status"] == "acknowledged", acknowledged
    if "progress" in steps:
        progressed = answer_of(
            department.post(
                f"{path}/progress", json={"note": "已制定方案", "reported_at": steps["progress"]}
            ),
            200,
        )
        assert progressed["status"] == "in_progress", progressed
        assert [p["note"] for p in progressed["progress"]] == ["已制定方案"]
    if "follow_up" in steps:
        followed = answer_of(
            office.supervisor.post(
                f"{path}/follow-ups",
                json={
                    "kind": "research",
                    "held_at": steps["follow_up"],
                    "members": ["金委员", "朴委员"],
                    "note": "委员实地调研整改进度",
                },
            ),
            200,
        )
        assert [(f["kind"], f["members"]) for f in followed["follow_ups"]] == [
            ("research", ["金委员", "朴委员"])
        ]
    completed = answer_of(
        department.post(
            f"{path}/completion", json={"note": "整改完成", "reported_at": steps["completion"]}
        ),
        200,
    )
    assert (completed["status"], completed["completion"]["note"]) == ("completed", "整改完成")
    verified = answer_of(
        office.supervisor.post(f"{path}/verification", json={"verified_at": steps["verified"]}),
        200,
    )
    assert verified["status"] == "verified" and verified["verified_at"], verified
    assert [each["number"] for each in verified["letters"]] == [issued["number"]]
    return verified


def test_a_topic_is_consulted_on_supervised_and_resolved(
    stack: RunningStack, office: Office
) -> None:
    issue = submit(office, "无物业小区环境脏乱", "2020-06-04T15:30:00+08:00")
    topic = screen(office, issue["id"], decision="topic", screened_at="2020-06-25T09:00:00+08:00")
    assert topic["status"] == "topic"

    assert load_seed(office.meetings) > 0
    meeting = answer_of(
        office.meetings.post(
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
        ),
        201,
    )
    assert (meeting["status"], meeting["kind"], meeting["venue"]) == ("planned", "thematic", HALL)
    path = f"/meetings/{meeting['id']}"

    # Meetings accepts the topic once it has consumed intake's decision; until then it says no.
    def add_topic() -> httpx.Response:
        return office.meetings.post(f"{path}/topics", json={"issue_id": issue["id"]})

    deadline = time.monotonic() + HAND_OVER_TIMEOUT
    while (added := add_topic()).status_code == 409:
        assert "not accepted" in added.json()["detail"], added.text
        assert time.monotonic() < deadline, added.text
        time.sleep(0.1)
    agenda = answer_of(added, 200)["topics"]
    assert [(t["issue_id"], t["title"]) for t in agenda] == [(issue["id"], issue["title"])]

    for person in ("yanji-member-01", "yanji-expert-01", "yanji-head-01"):
        invited = office.meetings.post(f"{path}/invitations", json={"person_id": person})
        answer_of(invited, 200)
    replied = answer_of(
        office.meetings.post(f"{path}/invitations/yanji-head-01/reply", json={"accepted": True}),
        200,
    )
    replies = {i["person_id"]: (i["role"], i["reply"]) for i in replied["invitations"]}
    assert replies == {
        "yanji-member-01": ("member", None),
        "yanji-expert-01": ("expert", None),
        "yanji-head-01": ("department_head", "confirmed"),
    }
    held = answer_of(
        office.meetings.post(
            f"{path}/held",
            json={
                "held_at": "2020-07-16T14:30:00+08:00",
                "attendance": ["yanji-member-01", "yanji-head-01"],
            },
        ),
        200,
    )
    assert held["status"] == "held"
    assert [a["person_id"] for a in held["attendance"]] == ["yanji-member-01", "yanji-head-01"]
    concluded = answer_of(
        office.meetings.post(
            f"{path}/conclusion",
            json={
                "concluded_at": "2020-07-16T17:00:00+08:00",
                "outcomes": [
                    {
                        "issue_ids": [issue["id"]],
                        "recommendation": "请住建局牵头引入物业服务并限期整治环境",
                        "department": "住建局",
                        "deadline": "2020-12-31",
                    }
                ],
            },
        ),
        200,
    )
    (outcome,) = concluded["outcomes"]
    assert concluded["status"] == "concluded"
    assert (outcome["issue_ids"], outcome["department"]) == ([issue["id"]], "住建局")

    found = eventually(
        lambda: office.supervisor.get("/cases", params={"meeting_id": meeting["id"]}),
        lambda page: page["total"] == 1,
        "supervision opened no case from the meeting's outcome",
    )
    (case,) = found["items"]
    assert (case["status"], case["origin"], case["office"]) == ("opened", "outcome", OFFICE)
    assert (case["outcome_id"], case["issue_ids"], case["department"], case["deadline"]) == (
        outcome["outcome_id"],
        [issue["id"]],
        "住建局",
        "2020-12-31",
    )
    # Another department does not learn that the case exists.
    elsewhere = office.department("城管局").get(f"/cases/{case['id']}")
    assert elsewhere.status_code == 404, elsewhere.text

    verified = supervise_to_verification(
        office,
        case,
        # Monday 20 Jul 2020 + 20 working days, no holiday between: Monday 17 Aug.
        {"working_days": 20, "issued_at": "2020-07-20T09:00:00+08:00"},
        {
            "ack": "2020-07-21T10:00:00+08:00",
            "progress": "2020-08-01T10:00:00+08:00",
            "follow_up": "2020-08-05T14:00:00+08:00",
            "completion": "2020-08-10T10:00:00+08:00",
            "verified": "2020-08-20T10:00:00+08:00",
        },
    )
    assert (verified["deadline"], verified["letters"][0]["deadline"]) == ("2020-08-17",) * 2

    resolved = resolved_by_case(office, issue["id"], case["id"])
    assert same_moment(resolved["resolved_at"], "2020-08-20T10:00:00+08:00"), resolved

    # The read side tells the same story, across the three services' streams.
    status = eventually(
        lambda: office.read_side.get(f"/issues/{issue['id']}"),
        lambda shown: shown["status"] == "resolved",
        "the projection to show the issue resolved",
    )
    steps = {step["step"]: step for step in status["timeline"]}
    path = {"submitted", "screened", "topic_added", "meeting_held", "meeting_concluded"}
    path |= {"case_opened", "letter_issued", "completion_reported", "case_verified", "resolved"}
    assert path <= set(steps), " ".join(s["step"] for s in status["timeline"])
    assert {step["stream"] for step in status["timeline"]} == {
        "INTAKE",
        "MEETINGS",
        "SUPERVISION",
    }
    assert steps["case_opened"]["case_id"] == case["id"]
    assert steps["meeting_held"]["meeting_id"] == meeting["id"]
    assert re.fullmatch(r"延市政协督〔2020〕\d+号", steps["letter_issued"]["letter_number"])


def test_a_referred_issue_is_supervised_and_resolved(stack: RunningStack, office: Office) -> None:
    issue = submit(office, "背街小巷路面坑洼", "2021-06-08T10:00:00+08:00")
    referred = screen(
        office,
        issue["id"],
        decision="refer",
        department="城管局",
        deadline="2021-07-31",
        screened_at="2021-06-25T09:30:00+08:00",
    )
    assert referred["status"] == "referred"
    assert (referred["screening"]["department"], referred["screening"]["deadline"]) == (
        "城管局",
        "2021-07-31",
    )

    found = eventually(
        lambda: office.supervisor.get("/cases", params={"issue_id": issue["id"]}),
        lambda page: page["total"] == 1,
        "supervision opened no case from intake's referral",
    )
    (case,) = found["items"]
    assert (case["status"], case["origin"], case["meeting_id"]) == ("opened", "referral", None)
    assert (case["issue_ids"], case["department"], case["deadline"]) == (
        [issue["id"]],
        "城管局",
        "2021-07-31",
    )

    verified = supervise_to_verification(
        office,
        case,
        {"deadline": "2021-07-31", "issued_at": "2021-06-28T09:00:00+08:00"},
        {
            "ack": "2021-06-29T09:00:00+08:00",
            "completion": "2021-07-20T16:00:00+08:00",
            "verified": "2021-07-24T10:00:00+08:00",
        },
    )
    assert verified["origin"] == "referral"

    resolved_by_case(office, issue["id"], case["id"])


def test_an_answered_issue_is_resolved_at_once(office: Office) -> None:
    issue = submit(office, "社区健身器材如何报修", "2020-06-10T09:00:00+08:00")
    answered = screen(
        office,
        issue["id"],
        decision="answered",
        answer="已告知居民拨打12345热线报修",
        screened_at="2020-06-25T10:00:00+08:00",
    )
    assert (answered["status"], answered["resolved_via"]) == ("resolved", "answered")
    assert same_moment(answered["resolved_at"], "2020-06-25T10:00:00+08:00"), answered

    shown = answer_of(office.viewer.get(f"/issues/{issue['id']}"), 200)
    assert shown["status"] == "resolved"
    assert [step["event"] for step in shown["history"]] == ["Submitted", "Screened", "Resolved"]


def refer_until_verified(
    office: Office, issue_id: str, cases_before: int, screened_at: str, verified_at: str
) -> dict[str, Any]:
    """A referral to 水利局, its case driven to verification the next day, and intake's issue
    once that verification resolved it."""
    year_end = f"{screened_at[:4]}-12-31"
    screen(
        office,
        issue_id,
        decision="refer",
        department="水利局",
        deadline=year_end,
        screened_at=screened_at,
    )
    found = eventually(
        lambda: office.supervisor.get("/cases", params={"issue_id": issue_id}),
        lambda page: page["total"] == cases_before + 1,
        "supervision opened no case from the referral",
    )
    (case,) = [c for c in found["items"] if c["status"] == "opened"]
    next_day = (datetime.fromisoformat(screened_at) + timedelta(days=1)).date().isoformat()
    supervise_to_verification(
        office,
        case,
        {"deadline": year_end, "issued_at": f"{next_day}T09:00:00+08:00"},
        {
            "ack": f"{next_day}T15:00:00+08:00",
            "completion": f"{next_day}T17:00:00+08:00",
            "verified": verified_at,
        },
    )
    resolved = resolved_by_case(office, issue_id, case["id"])
    assert same_moment(resolved["resolved_at"], verified_at), resolved
    return case


def test_a_reopened_issue_is_resolved_again_by_a_second_case(office: Office) -> None:
    """Resolved, closed, then reopened because the problem came back: screened again, the
    second referral opens a second case, and that case resolves the issue again."""
    issue = submit(office, "小区排水管道堵塞", "2022-06-12T09:00:00+08:00")
    path = f"/issues/{issue['id']}"
    first = refer_until_verified(
        office, issue["id"], 0, "2022-06-25T11:00:00+08:00", "2022-07-15T09:00:00+08:00"
    )
    closed = office.leader.post(f"{path}/close", json={"closed_at": "2022-07-20T09:00:00+08:00"})
    assert answer_of(closed, 200)["status"] == "closed"
    reopening = {"reason": "居民反映管道再次堵塞", "reopened_at": "2022-08-01T09:00:00+08:00"}
    reopened = answer_of(office.leader.post(f"{path}/reopen", json=reopening), 200)
    assert (reopened["status"], reopened["screening"]) == ("submitted", None), reopened

    second = refer_until_verified(
        office, issue["id"], 1, "2022-08-03T09:00:00+08:00", "2022-08-20T09:00:00+08:00"
    )
    assert first["id"] != second["id"]
    history = answer_of(office.viewer.get(path), 200)["history"]
    # Each case's opening and completion reach the issue too (for Open311 and the lookup).
    assert [step["event"] for step in history] == [
        "Submitted",
        "Screened",
        "CaseNoted",
        "CaseNoted",
        "Resolved",
        "Closed",
        "Reopened",
        "Screened",
        "CaseNoted",
        "CaseNoted",
        "Resolved",
    ]
    assert [step.get("case_id") for step in history if step["event"] == "Resolved"] == [
        first["id"],
        second["id"],
    ]


def actors_of(history: dict[str, Any]) -> list[tuple[str, str, str | None, str | None]]:
    return [
        (e["event"], e["actor"]["subject"], e["actor"]["office"], e["actor"]["role"])
        for e in history["entries"]
    ]


def test_every_step_of_an_issue_its_case_and_a_meeting_names_who_took_it(
    stack: RunningStack, office: Office, mint: Callable[..., str]
) -> None:
    """Each history names the token's subject, office and authorizing role, and the request
    id; what another service caused is `system:<service>`, traced to the request behind it."""
    body = issue_body(
        OFFICE, title="路口信号灯故障", reporter_name="李明", reporter_phone="13900000000"
    )
    posted = office.clerk.post("/issues", json=body)
    issue = answer_of(posted, 201)
    screening = office.leader.post(
        f"/issues/{issue['id']}/screening",
        json={
            "decision": "refer",
            "department": "交通局",
            "deadline": "2023-08-31",
            "screened_at": "2023-06-25T09:30:00+08:00",
        },
    )
    answer_of(screening, 200)
    found = eventually(
        lambda: office.supervisor.get("/cases", params={"issue_id": issue["id"]}),
        lambda page: page["total"] == 1,
        "supervision opened no case from intake's referral",
    )
    (case,) = found["items"]
    supervise_to_verification(
        office,
        case,
        {"deadline": "2023-08-31", "issued_at": "2023-07-01T09:00:00+08:00"},
        {
            "ack": "2023-07-02T09:00:00+08:00",
            "completion": "2023-07-20T16:00:00+08:00",
            "verified": "2023-07-24T10:00:00+08:00",
        },
    )
    resolved_by_case(office, issue["id"], case["id"])

    issue_history = answer_of(office.leader.get(f"/issues/{issue['id']}/history"), 200)
    assert (issue_history["id"], issue_history["office"]) == (issue["id"], OFFICE)
    assert actors_of(issue_history) == [
        ("Submitted", "e2e-yanji", OFFICE, "clerk"),
        ("Screened", "e2e-yanji", OFFICE, "leader"),
        ("CaseNoted", "system:supervision", OFFICE, "system"),
        ("CaseNoted", "system:supervision", OFFICE, "system"),
        ("Resolved", "system:supervision", OFFICE, "system"),
    ]
    submitted, screened, _, _, resolved = issue_history["entries"]
    assert submitted["actor"]["request_id"] == posted.headers["x-request-id"]
    assert screened["actor"]["request_id"] == screening.headers["x-request-id"]
    assert [e["version"] for e in issue_history["entries"]] == [1, 2, 3, 4, 5]
    recorded_at = datetime.fromisoformat(submitted["recorded_at"])
    assert abs(recorded_at - datetime.now(recorded_at.tzinfo)) < timedelta(minutes=5)
    assert submitted["data"]["reporter_name"] == "李明"
    assert (screened["data"]["decision"], resolved["data"]["case_id"]) == ("refer", case["id"])
    assert "command" not in screened["data"]

    # The viewer reads the history, not the reporter; another county office not at all.
    seen_by_viewer = answer_of(office.viewer.get(f"/issues/{issue['id']}/history"), 200)
    assert "reporter_name" not in seen_by_viewer["entries"][0]["data"]
    tumen = httpx.Client(base_url=stack.intake, headers=bearer(mint("tumen", "leader")))
    prefecture = httpx.Client(base_url=stack.intake, headers=bearer(mint("yanbian", "viewer")))
    with tumen, prefecture:
        assert tumen.get(f"/issues/{issue['id']}/history").status_code == 404
        assert prefecture.get(f"/issues/{issue['id']}/history").status_code == 200

    case_history = answer_of(office.supervisor.get(f"/cases/{case['id']}/history"), 200)
    assert actors_of(case_history) == [
        ("Opened", "system:intake", OFFICE, "system"),
        ("LetterIssued", "e2e-yanji", OFFICE, "supervisor"),
        ("Acknowledged", "e2e-yanji", OFFICE, "department"),
        ("CompletionReported", "e2e-yanji", OFFICE, "department"),
        ("Verified", "e2e-yanji", OFFICE, "supervisor"),
    ]
    opened, _, acknowledged, *_ = case_history["entries"]
    assert opened["actor"]["request_id"] == screening.headers["x-request-id"]
    assert acknowledged["actor"]["department"] == "交通局"
    own_department = office.department("交通局").get(f"/cases/{case['id']}/history")
    assert answer_of(own_department, 200)["id"] == case["id"]
    assert office.department("水利局").get(f"/cases/{case['id']}/history").status_code == 404

    # The read side's timeline names who took each step, from the published envelopes.
    status = eventually(
        lambda: office.read_side.get(f"/issues/{issue['id']}"),
        lambda shown: shown["status"] == "resolved",
        "the projection to show the issue resolved",
    )
    by = {step["step"]: step["by"] for step in status["timeline"]}
    assert by["submitted"] == {"subject": "e2e-yanji", "role": "clerk"}
    assert by["screened"] == {"subject": "e2e-yanji", "role": "leader"}
    assert by["case_opened"] == {"subject": "system:intake", "role": "system"}
    assert by["letter_issued"] == {"subject": "e2e-yanji", "role": "supervisor"}

    activity = answer_of(
        office.clerk.post(
            "/activities",
            json={
                "office": OFFICE,
                "held_at": "2020-06-04T14:30:00+08:00",
                "community": "进学社区",
                "members": ["金委员"],
            },
        ),
        201,
    )
    corrected = {"members": ["金委员", "朴委员"], "reason": "漏记一位委员"}
    answer_of(office.clerk.post(f"/activities/{activity['id']}/corrections", json=corrected), 200)
    activity_history = answer_of(office.viewer.get(f"/activities/{activity['id']}/history"), 200)
    assert actors_of(activity_history) == [
        ("Recorded", "e2e-yanji", OFFICE, "clerk"),
        ("Corrected", "e2e-yanji", OFFICE, "clerk"),
    ]
    with httpx.Client(base_url=stack.intake, headers=bearer(mint("tumen", "viewer"))) as other:
        assert other.get(f"/activities/{activity['id']}/history").status_code == 404

    load_seed(office.meetings)
    meeting = answer_of(
        office.meetings.post(
            "/meetings",
            json={
                "office": OFFICE,
                "kind": "thematic",
                "title": "交通信号设施专题协商会",
                "theme": "路口信号灯维护",
                "starts_at": "2020-09-10T14:30:00+08:00",
                "ends_at": "2020-09-10T17:00:00+08:00",
                "venue": HALL,
                "planned_at": "2020-09-01T09:00:00+08:00",
            },
        ),
        201,
    )
    meeting_history = answer_of(office.meetings.get(f"/meetings/{meeting['id']}/history"), 200)
    assert actors_of(meeting_history) == [("Planned", "e2e-yanji", OFFICE, "meetings")]
    with httpx.Client(base_url=stack.meetings, headers=bearer(mint("tumen", "meetings"))) as other:
        assert other.get(f"/meetings/{meeting['id']}/history").status_code == 404
