"""A meetings clerk plans, fills, holds and concludes one meeting of each kind over HTTP,
and the outcomes reach NATS for supervision."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from icalendar import Calendar
from nats.js.api import ConsumerConfig, DeliverPolicy

from demo.seed import load_seed
from shared.contracts import MeetingConcludedV1, MeetingHeldV1, decode
from shared.streams import MEETINGS_STREAM
from tests.support.http import bearer, issue_body
from tests.support.stack import RunningStack

HALL = "延吉市政协委员协商议事厅"
ONSITE = "帽儿山登山步道入口（现场）"


def screen_as_topics(stack: RunningStack, leader: str, issue_ids: list[str]) -> None:
    """The leading group's `topic` decisions, taken through intake's API."""
    for issue_id in issue_ids:
        answer = httpx.post(
            f"{stack.intake}/issues/{issue_id}/screening",
            json={"decision": "topic", "screened_at": "2020-06-25T09:00:00+08:00"},
            headers=bearer(leader),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert (answer.json()["status"], answer.json()["screening"]["decision"]) == (
            "topic",
            "topic",
        )


def meetings_stream(stack: RunningStack, wanted: Callable[[list[Any]], bool]) -> list[Any]:
    """The MEETINGS stream's events, read until `wanted` holds (or 20 s pass), as supervision
    reads them."""

    async def read() -> list[Any]:
        nc = await stack.connect_as("supervision")
        js = nc.jetstream()
        events: list[Any] = []
        subscription = await js.subscribe(
            "meetings.>",
            stream=MEETINGS_STREAM.name,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        try:
            async with asyncio.timeout(20):
                while not wanted(events):
                    message = await subscription.next_msg(timeout=20)
                    events.append(decode(message.data)[1])
        finally:
            await subscription.unsubscribe()
            await nc.close()
        return events

    return asyncio.run(read())


def test_one_meeting_of_each_kind_is_planned_filled_held_and_concluded(
    stack: RunningStack, mint: Callable[..., str]
) -> None:
    clerk, leader = mint("yanji", "clerk"), mint("yanji", "leader")
    staff = mint("yanji", "meetings")
    client = httpx.Client(base_url=stack.meetings, headers=bearer(staff), timeout=10)
    assert load_seed(client) > 40
    assert load_seed(client) == 0  # a second load is a retry

    issues = []
    for n, title in enumerate(("无物业小区管理难", "帽儿山步道垃圾", "校园周边交通拥堵")):
        body = issue_body(title=title, submitted_at=f"2020-06-{10 + n}T15:30:00+08:00")
        answer = httpx.post(f"{stack.intake}/issues", json=body, headers=bearer(clerk), timeout=10)
        assert answer.status_code == 201, answer.text
        issues.append((answer.json()["id"], title))

    meeting = client.post(
        "/meetings",
        json={
            "office": "yanji",
            "kind": "thematic",
            "title": "无物业小区管理专题协商会",
            "theme": "老旧小区无物业管理",
            "starts_at": "2020-07-16T14:30:00",
            "ends_at": "2020-07-16T17:00:00",
            "venue": HALL,
            "planned_at": "2020-07-01T09:00:00",
        },
    ).json()
    refused = client.post(f"/meetings/{meeting['id']}/topics", json={"issue_id": issues[0][0]})
    assert refused.status_code == 409 and "not accepted" in refused.json()["detail"]

    screen_as_topics(stack, leader, [i for i, _ in issues])
    thematic = fill_and_conclude(client, meeting, issues[0][0], "住建局")

    onsite = client.post(
        "/meetings",
        json={
            "office": "yanji",
            "kind": "onsite",
            "title": "帽儿山生态环境现场协商会",
            "theme": "登山步道垃圾治理",
            "starts_at": "2020-08-20T09:00:00+08:00",
            "ends_at": "2020-08-20T11:30:00+08:00",
            "venue": ONSITE,
            "planned_at": "2020-08-01T09:00:00+08:00",
        },
        headers={"Idempotency-Key": "onsite-2020"},
    ).json()
    also_invited = client.post(
        f"/meetings/{onsite['id']}/invitations", json={"person_id": "yanji-head-01"}
    )
    onsite = fill_and_conclude(client, onsite, issues[1][0], "生态环境局")

    written = client.post(
        "/meetings",
        json={
            "office": "yanji",
            "kind": "written",
            "title": "校园周边交通书面协商",
            "theme": "上下学时段交通拥堵",
            "starts_at": "2020-09-01T09:00:00+08:00",
            "ends_at": "2020-09-15T17:00:00+08:00",
            "submission_deadline": "2020-09-15T17:00:00+08:00",
            "planned_at": "2020-08-25T09:00:00+08:00",
        },
    ).json()
    written = fill_and_conclude(client, written, issues[2][0], "交通运输局")

    assert also_invited.status_code == 200  # no conflict: the thematic one was in July
    assert [m["status"] for m in (thematic, onsite, written)] == ["concluded"] * 3

    concluded = {m["id"] for m in (thematic, onsite, written)}
    events = meetings_stream(
        stack,
        lambda seen: (
            {str(e.meeting_id) for e in seen if isinstance(e, MeetingConcludedV1)} >= concluded
        ),
    )
    outcomes = {str(e.meeting_id): e.outcomes for e in events if isinstance(e, MeetingConcludedV1)}
    held = {str(e.meeting_id): e for e in events if isinstance(e, MeetingHeldV1)}
    assert {o.department for m in concluded for o in outcomes[m]} == {
        "住建局",
        "生态环境局",
        "交通运输局",
    }
    assert [
        str(o.issue_ids[0]) for m in (thematic, onsite, written) for o in outcomes[m["id"]]
    ] == [i for i, _ in issues]
    assert [a.person_id for a in held[written["id"]].attendance] == ["yanji-expert-01"]

    viewer = mint("yanji", "viewer")
    feed = httpx.get(f"{stack.meetings}/calendar/yanji.ics", params={"token": viewer}, timeout=10)
    uids = {str(e["uid"]) for e in Calendar.from_ical(feed.content).walk("VEVENT")}
    assert uids == {f"{m}@shangliang" for m in concluded}


def fill_and_conclude(
    client: httpx.Client, meeting: dict[str, Any], issue_id: str, department: str
) -> dict[str, Any]:
    """Agenda, participants, holding (or opinions and closing), outcomes — as a clerk would."""
    path = f"/meetings/{meeting['id']}"

    def ok(answer: httpx.Response) -> dict[str, Any]:
        assert answer.status_code in (200, 201), answer.text
        return answer.json()  # type: ignore[no-any-return]

    deadline = time.monotonic() + 15
    while (added := client.post(f"{path}/topics", json={"issue_id": issue_id})).status_code == 409:
        assert time.monotonic() < deadline, added.text  # the decision is still on its way
        time.sleep(0.1)
    ok(added)
    ok(client.post(f"{path}/invitations", json={"person_id": "yanji-member-01", "role": "member"}))
    ok(client.post(f"{path}/invitations", json={"person_id": "yanji-expert-01", "role": "expert"}))
    if meeting["kind"] == "written":
        ok(
            client.post(
                f"{path}/opinions",
                json={
                    "person_id": "yanji-expert-01",
                    "opinion": "建议错峰放学，增设临时停车泊位",
                    "received_at": "2020-09-10T10:00:00+08:00",
                },
            )
        )
        ok(client.post(f"{path}/close", json={"closed_at": "2020-09-15T18:00:00+08:00"}))
        concluded_at = "2020-09-20T10:00:00+08:00"
    else:
        head = "yanji-head-01" if department == "住建局" else "yanji-head-03"
        ok(client.post(f"{path}/invitations", json={"person_id": head}))
        ok(client.post(f"{path}/invitations/{head}/reply", json={"accepted": True}))
        ok(
            client.post(
                f"{path}/held",
                json={"held_at": meeting["starts_at"], "attendance": ["yanji-member-01", head]},
            )
        )
        concluded_at = meeting["ends_at"]
    outcome = {
        "issue_ids": [issue_id],
        "recommendation": f"请{department}制定整改方案并限期落实",
        "department": department,
        "deadline": "2020-12-31",
    }
    return ok(
        client.post(
            f"{path}/conclusion",
            json={"concluded_at": concluded_at, "outcomes": [outcome]},
            headers={"Idempotency-Key": f"conclude-{meeting['id']}"},
        )
    )
