"""The meetings HTTP API over the real app and a real SQLite file: codes, bodies, calendars."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from eventsourcing.persistence import Tracking
from icalendar import Calendar

from demo.seed import seed_requests
from services.meetings.application import MeetingsApplication
from services.meetings.consumers import intake_policy
from services.meetings.main import create_app
from shared.auth import Authenticator
from shared.clock import CHINA
from shared.consumer import Delivered
from shared.contracts import Envelope, IssueScreenedV1
from shared.process import UpstreamProcessor
from shared.settings import Settings

HALL = "延吉市政协委员协商议事厅"


class Api:
    def __init__(self, client: httpx.AsyncClient, settings: Settings, app: MeetingsApplication):
        self.client = client
        self.authenticator = Authenticator(settings)
        self.meetings = app
        self.intake_position = 0

    def token(self, office: str = "yanji", *roles: str) -> str:
        return self.authenticator.mint(office, list(roles or ("meetings",)))

    def headers(self, office: str = "yanji", *roles: str, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token(office, *roles)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def post(self, path: str, body: dict[str, Any], office: str = "yanji", **kw: Any):
        return await self.client.post(path, json=body, headers=self.headers(office, **kw))

    def screen_as_topic(self, issue_id: UUID, office: str = "yanji") -> None:
        contract = IssueScreenedV1(
            issue_id=issue_id,
            office=office,
            decision="topic",
            screened_at=datetime(2020, 6, 20, tzinfo=UTC),
            screened_by="leader",
            title="无物业小区楼道灯损坏",
            category="物业管理",
        )
        self.intake_position += 1
        envelope = Envelope.wrap(str(uuid4()), datetime.now(UTC), "intake.yanji.x", contract)
        processor = UpstreamProcessor(self.meetings, intake_policy(self.meetings))
        processor.apply(
            [Delivered(self.intake_position, envelope, contract)],
            Tracking("INTAKE", self.intake_position),
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    meetings: MeetingsApplication = app.state.meetings
    task = asyncio.create_task(meetings.group_commit.run())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://meetings") as client:
        api = Api(client, settings, meetings)
        for path, body in (
            ("/departments", {"name": "住建局"}),
            ("/venues", {"name": HALL, "address": "延吉市公园路"}),
            ("/people", {"person_id": "m1", "name": "金明", "kind": "member"}),
            ("/people", {"person_id": "m2", "name": "李华", "kind": "member"}),
        ):
            assert (await api.post(path, body)).status_code == 201
        yield api
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    meetings.close()


def plan_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "office": "yanji",
        "kind": "thematic",
        "title": "无物业小区管理专题协商会",
        "theme": "老旧小区无物业管理",
        "starts_at": "2020-07-16T14:30:00+08:00",
        "ends_at": "2020-07-16T17:00:00+08:00",
        "venue": HALL,
        "planned_at": "2020-07-01T09:00:00+08:00",
    }
    body.update(changes)
    return body


async def test_a_meeting_is_planned_filled_held_and_concluded_over_http(api: Api) -> None:
    issue = uuid4()
    api.screen_as_topic(issue)
    created = await api.post("/meetings", plan_body(), key="plan-1")
    retried = await api.post("/meetings", plan_body(), key="plan-1")
    meeting = created.json()["id"]

    assert (created.status_code, retried.status_code) == (201, 200)
    assert retried.json()["id"] == meeting
    assert (await api.post("/meetings", plan_body(title="别的会"), key="plan-1")).status_code == 409

    topic = await api.post(f"/meetings/{meeting}/topics", {"issue_id": str(issue)})
    await api.post(f"/meetings/{meeting}/invitations", {"person_id": "m1", "role": "member"})
    await api.post(f"/meetings/{meeting}/invitations/m1/reply", {"accepted": True})
    held = await api.post(
        f"/meetings/{meeting}/held", {"attendance": ["m1"], "held_at": "2020-07-16T14:30:00"}
    )
    conclusion = {
        "concluded_at": "2020-07-20T10:00:00+08:00",
        "outcomes": [
            {
                "issue_ids": [str(issue)],
                "recommendation": "建立无物业小区托管机制",
                "department": "住建局",
                "deadline": "2020-10-31",
            }
        ],
    }
    concluded = await api.post(f"/meetings/{meeting}/conclusion", conclusion, key="c1")
    again = await api.post(f"/meetings/{meeting}/conclusion", conclusion, key="c1")

    assert topic.status_code == held.status_code == concluded.status_code == 200, concluded.text
    assert held.json()["held_at"] == "2020-07-16T14:30:00+08:00"  # naive is Shanghai time
    assert concluded.json()["status"] == "concluded"
    assert again.status_code == 200 and again.json()["version"] == concluded.json()["version"]
    assert len(concluded.json()["outcomes"]) == 1
    read = await api.client.get(f"/meetings/{meeting}", headers=api.headers("yanbian", "viewer"))
    assert [h["event"] for h in read.json()["history"]] == [
        "Planned",
        "TopicAdded",
        "ParticipantInvited",
        "InvitationAnswered",
        "Held",
        "Concluded",
    ]


async def test_a_window_that_ends_before_it_starts_is_a_422_naming_the_field(api: Api) -> None:
    before = api.meetings.recorder.max_notification_id()
    answer = await api.post("/meetings", plan_body(ends_at="2020-07-16T13:00:00+08:00"))

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "ends_at"]
    assert (
        "结束" in answer.json()["message"] and "ends before it starts" in answer.json()["message"]
    )
    assert api.meetings.recorder.max_notification_id() == before


async def test_a_time_past_the_years_china_time_can_show_is_a_422_naming_it(api: Api) -> None:
    """Found by fuzzing: year 9999 west of Greenwich cannot be put on China's clock."""
    before = api.meetings.recorder.max_notification_id()
    answer = await api.post("/meetings", plan_body(ends_at="9999-12-31T23:00:00-10:00"))

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "ends_at"]
    assert "1949" in answer.json()["message"] and "2099" in answer.json()["message"]
    assert api.meetings.recorder.max_notification_id() == before


async def test_an_outcome_with_an_early_deadline_is_a_422_naming_the_outcome(api: Api) -> None:
    issue = uuid4()
    api.screen_as_topic(issue)
    meeting = (await api.post("/meetings", plan_body())).json()["id"]
    await api.post(f"/meetings/{meeting}/topics", {"issue_id": str(issue)})
    await api.post(f"/meetings/{meeting}/invitations", {"person_id": "m1"})
    await api.post(f"/meetings/{meeting}/held", {"attendance": ["m1"]})
    bad = {
        "issue_ids": [str(issue)],
        "recommendation": "x",
        "department": "住建局",
        "deadline": "2020-01-01",
    }

    answer = await api.post(f"/meetings/{meeting}/conclusion", {"outcomes": [bad]})

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "outcomes", "0", "deadline"]


async def test_changing_a_cancelled_meeting_is_a_409_naming_its_state(api: Api) -> None:
    meeting = (await api.post("/meetings", plan_body())).json()["id"]
    await api.post(f"/meetings/{meeting}/cancel", {"reason": "台风"})

    answer = await api.post(f"/meetings/{meeting}/invitations", {"person_id": "m1"})

    assert answer.status_code == 409
    assert "cancelled" in answer.json()["detail"] and "已取消" in answer.json()["message"]


async def test_an_issue_intake_has_not_accepted_is_a_409_with_the_reason(api: Api) -> None:
    meeting = (await api.post("/meetings", plan_body())).json()["id"]
    answer = await api.post(f"/meetings/{meeting}/topics", {"issue_id": str(uuid4())})
    assert answer.status_code == 409
    assert "not accepted" in answer.json()["detail"]


async def test_who_may_read_and_write_a_meeting(api: Api) -> None:
    meeting = (await api.post("/meetings", plan_body())).json()["id"]
    path = f"/meetings/{meeting}"

    assert (await api.client.get(path)).status_code == 401
    assert (await api.client.get(path, headers=api.headers("yanji", "viewer"))).status_code == 200
    assert (await api.client.get(path, headers=api.headers("yanbian", "viewer"))).status_code == 200
    assert (await api.client.get(path, headers=api.headers("tumen", "viewer"))).status_code == 404
    clerk = await api.client.post(
        f"{path}/cancel", json={"reason": "x"}, headers=api.headers("yanji", "clerk")
    )
    prefecture = await api.post(f"{path}/cancel", {"reason": "x"}, office="yanbian")
    other = await api.post("/meetings", plan_body(office="tumen"))
    assert (clerk.status_code, prefecture.status_code, other.status_code) == (403, 403, 403)
    listed = await api.client.get("/meetings", headers=api.headers("tumen", "viewer"))
    assert listed.json()["total"] == 0


async def test_reference_data_is_per_office_and_paged(api: Api) -> None:
    people = await api.client.get("/people?page_size=1", headers=api.headers("yanji", "viewer"))
    tumen = await api.client.get("/people", headers=api.headers("tumen", "viewer"))
    head = await api.post(
        "/people", {"name": "张局长", "kind": "department_head", "department": "不存在局"}
    )

    assert people.json()["total"] == 2 and len(people.json()["items"]) == 1
    assert tumen.json()["total"] == 0
    for office in ("tumen", "atlantis"):
        hidden = await api.client.get(
            f"/people?office={office}", headers=api.headers("yanji", "viewer")
        )
        assert hidden.status_code == 404
    assert head.status_code == 422 and head.json()["detail"][0]["loc"] == ["body", "department"]


async def test_the_office_calendar_shows_postponed_and_cancelled_meetings(api: Api) -> None:
    moved = (await api.post("/meetings", plan_body(title="要延期的会"))).json()["id"]
    dropped = (
        await api.post(
            "/meetings",
            plan_body(
                title="要取消的会",
                starts_at="2020-08-01T09:00:00+08:00",
                ends_at="2020-08-01T11:00:00+08:00",
            ),
        )
    ).json()["id"]
    await api.post(
        f"/meetings/{moved}/postpone",
        {
            "starts_at": "2020-07-23T14:30:00",
            "ends_at": "2020-07-23T17:00:00",
            "reason": "出差",
            "postponed_at": "2020-07-20T09:00:00",
        },
    )
    await api.post(f"/meetings/{dropped}/cancel", {"reason": "台风"})

    answer = await api.client.get(f"/calendar/yanji.ics?token={api.token('yanji', 'viewer')}")

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/calendar")
    events = {str(e["uid"]): e for e in Calendar.from_ical(answer.content).walk("VEVENT")}
    postponed, cancelled = events[f"{moved}@shangliang"], events[f"{dropped}@shangliang"]
    assert postponed.decoded("dtstart") == datetime(2020, 7, 23, 14, 30, tzinfo=CHINA)
    assert int(postponed["sequence"]) == 1 and str(postponed["status"]) == "CONFIRMED"
    assert str(cancelled["status"]) == "CANCELLED"
    assert "要延期的会" in str(postponed["summary"])


async def test_a_calendar_url_takes_only_a_valid_viewer_token_of_a_readable_office(
    api: Api,
) -> None:
    writer = await api.client.get(f"/calendar/yanji.ics?token={api.token('yanji', 'meetings')}")
    forged = await api.client.get("/calendar/yanji.ics?token=not-a-token")
    other = await api.client.get(f"/calendar/yanji.ics?token={api.token('tumen', 'viewer')}")
    missing = await api.client.get("/calendar/yanji.ics")
    assert (writer.status_code, forged.status_code, other.status_code) == (403, 401, 404)
    assert missing.status_code == 401


async def test_a_calendar_token_opens_the_feeds_and_no_other_route(api: Api) -> None:
    token = api.authenticator.mint_calendar("yanji", "wang")

    office = await api.client.get(f"/calendar/yanji.ics?token={token}")
    person = await api.client.get(f"/calendar/people/m2.ics?token={token}")
    bearer = await api.client.get("/meetings", headers={"Authorization": f"Bearer {token}"})
    people = await api.client.get("/people", headers={"Authorization": f"Bearer {token}"})
    assert (office.status_code, person.status_code) == (200, 200)
    assert (bearer.status_code, people.status_code) == (401, 401)


async def test_a_persons_calendar_holds_only_the_meetings_they_did_not_decline(api: Api) -> None:
    invited = (await api.post("/meetings", plan_body(title="受邀的会"))).json()["id"]
    declined = (
        await api.post(
            "/meetings",
            plan_body(
                title="请假的会",
                starts_at="2020-09-01T09:00:00+08:00",
                ends_at="2020-09-01T11:00:00+08:00",
            ),
        )
    ).json()["id"]
    await api.post(
        "/meetings",
        plan_body(
            title="无关的会",
            starts_at="2020-10-01T09:00:00+08:00",
            ends_at="2020-10-01T10:00:00+08:00",
        ),
    )
    for meeting in (invited, declined):
        await api.post(f"/meetings/{meeting}/invitations", {"person_id": "m2"})
    await api.post(f"/meetings/{declined}/invitations/m2/reply", {"accepted": False})

    answer = await api.client.get(f"/calendar/people/m2.ics?token={api.token('yanji', 'viewer')}")

    uids = [str(e["uid"]) for e in Calendar.from_ical(answer.content).walk("VEVENT")]
    assert uids == [f"{invited}@shangliang"]


async def test_a_person_id_with_a_line_break_gets_an_empty_calendar_not_a_500(api: Api) -> None:
    """Found by the fuzzer: the feed's name holds the id, and a raw line break broke it."""
    viewer = api.token("yanji", "viewer")
    answer = await api.client.get(f"/calendar/people/a%0Ab.ics?token={viewer}")
    assert answer.status_code == 200, answer.text
    assert Calendar.from_ical(answer.content).walk("VEVENT") == []
    assert "\r\nX-WR-CALNAME:协商会议 · a\\nb\r\n" in answer.text  # escaped as TEXT


async def test_two_bookings_of_one_hall_are_answered_with_a_named_conflict(api: Api) -> None:
    first = (await api.post("/meetings", plan_body(title="先定的会"))).json()
    answer = await api.post(
        "/meetings",
        plan_body(
            title="后定的会",
            starts_at=datetime(2020, 7, 16, 16, tzinfo=CHINA).isoformat(),
            ends_at=(datetime(2020, 7, 16, 16, tzinfo=CHINA) + timedelta(hours=3)).isoformat(),
        ),
    )
    assert answer.status_code == 409
    assert "先定的会" in answer.json()["detail"] and first["id"] in answer.json()["detail"]


async def test_the_yanji_seed_loads_once_with_the_29_expert_panel(api: Api) -> None:
    requests = seed_requests()
    first = [(await api.post(path, body)).status_code for path, body in requests]
    second = [(await api.post(path, body)).status_code for path, body in requests]
    experts = await api.client.get(
        "/people?kind=expert&page_size=200", headers=api.headers("yanji", "viewer")
    )
    halls = await api.client.get("/venues", headers=api.headers("yanji", "viewer"))

    assert set(first) == {201, 200} and set(second) == {200}  # the hall was registered before
    assert experts.json()["total"] == 29
    assert "延吉市政协委员协商议事厅" in {v["name"] for v in halls.json()["items"]}


async def test_two_simultaneous_invitations_of_one_person_give_one_200_and_one_409(
    api: Api,
) -> None:
    await api.post("/venues", {"name": "河南街道（现场）"})
    first = (await api.post("/meetings", plan_body(title="第一场"))).json()["id"]
    second = (
        await api.post(
            "/meetings", plan_body(title="第二场", kind="onsite", venue="河南街道（现场）")
        )
    ).json()["id"]

    answers = await asyncio.gather(
        *[api.post(f"/meetings/{m}/invitations", {"person_id": "m1"}) for m in (first, second)]
    )

    assert sorted(a.status_code for a in answers) == [200, 409]
    refused = next(a for a in answers if a.status_code == 409).json()["detail"]
    assert "第一场" in refused or "第二场" in refused


async def test_reference_data_registrations_honour_the_idempotency_key(api: Api) -> None:
    person = {"name": "崔委员", "kind": "member"}
    first = await api.post("/people", person, key="p-1")
    retried = await api.post("/people", person, key="p-1")
    other = await api.post("/venues", {"name": "新会场"}, key="p-1")
    venue = await api.post("/venues", {"name": "新会场"}, key="v-1")
    reused = await api.post("/venues", {"name": "另一个会场"}, key="v-1")

    assert (first.status_code, retried.status_code) == (201, 200)
    assert first.json()["person_id"] == retried.json()["person_id"]
    assert other.status_code == 409  # the key was used for the person
    assert (venue.status_code, reused.status_code) == (201, 409)
    names = await api.client.get("/venues", headers=api.headers("yanji", "viewer"))
    assert "另一个会场" not in {v["name"] for v in names.json()["items"]}
