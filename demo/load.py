"""The demo (演示): the 2020 scenario loaded through the services' public HTTP APIs, then checked.

Everything goes through docs/API.md as an office's staff would use it, with an
`Idempotency-Key` on every write derived from the scenario's stable keys, so that loading
twice is a retry that stores nothing new. Supervision opens cases from events, so the loader
waits for them; at the end it waits until the projections show the scenario's figures, and
until the notifications service has sent what the load made due (its deliveries' summary
settled), so that `demo --once` stops with the notices out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from secrets import token_urlsafe
from typing import Any

import httpx

from demo.content import content
from demo.records import (
    YEAR,
    Activity,
    Case,
    Invitation,
    Issue,
    Meeting,
    Scenario,
)
from demo.scenario import generate
from demo.table import LoadResult, Notices, compare
from services.console.accounts import Account, Accounts
from shared.auth import Authenticator

SERVICES = ("intake", "meetings", "supervision", "projections")
KEY_PREFIX = f"demo-{YEAR}-v2"
"""Versioned so that an edited scenario does not collide with an old run's keys."""
POLL_SECONDS = 0.25

CASE_TIME_FIELDS = {
    "letters": "issued_at",
    "acknowledgement": "acknowledged_at",
    "progress": "reported_at",
    "follow-ups": "held_at",
    "completion": "reported_at",
    "send-back": "reopened_at",
    "verification": "verified_at",
}


def letters_in_date_order(cases: Iterable[Case]) -> dict[str, str | None]:
    """Each letter's write key → the key of its office's letter dated just before it (None
    for the first): the order the letters must be issued in to be numbered by their dates."""
    letters = sorted(
        (case.office, step.at, f"case-{case.key}-{n}-{step.action}")
        for case in cases
        for n, step in enumerate(case.steps)
        if step.action == "letters"
    )
    before: dict[str, str | None] = {}
    for n, (office, _, key) in enumerate(letters):
        earlier = letters[n - 1] if n else None
        before[key] = earlier[2] if earlier is not None and earlier[0] == office else None
    return before


class DemoError(RuntimeError):
    """The demo could not be loaded or does not add up; the message is meant for the user."""


class DemoInterrupted(Exception):
    """A stop was asked for while the demo was loading."""


def load_scenario(
    authenticator: Authenticator,
    urls: Mapping[str, str],
    scenario: Scenario | None = None,
    concurrency: int = 16,
    wait_seconds: float = 60.0,
    statistics_seconds: float = 60.0,
    interrupted: Callable[[], bool] = lambda: False,
    say: Callable[[str], None] = lambda _: None,
    notices_seconds: float = 120.0,
) -> LoadResult:
    """Load the scenario through the services at `urls` and wait for the projections' figures.

    `wait_seconds` bounds each wait for another service to catch up (a case to open, a topic
    to be known); `statistics_seconds` the wait for the projections' figures, once the load is
    in and supervision has judged the deadlines. With a `notifications` URL, `notices_seconds`
    bounds the wait for its notices to go out. `interrupted` is asked before every request,
    so that Ctrl-C does not wait for the load.
    """
    missing = [name for name in SERVICES if name not in urls]
    if missing:
        raise DemoError(f"缺少服务 / the demo needs these services too: {', '.join(missing)}")
    loader = _Loader(
        scenario or generate(),
        urls,
        authenticator,
        concurrency,
        wait_seconds,
        statistics_seconds,
        interrupted,
        say,
        notices_seconds,
    )
    return asyncio.run(loader.run())


DEMO_ROLES = ("clerk", "leader", "meetings", "supervisor", "department", "viewer")


def demo_accounts(accounts: Accounts, department: str | None = None) -> list[tuple[Account, str]]:
    """One workbench account per role of each office of the scenario (`yanji-clerk`, …), each
    with a fresh password (set again on every run, so the printed ones are the valid ones);
    the department account's is `department`, by default the data's workbench department."""
    text = content()
    department = department or text.workbench_department
    made = []
    for office in text.offices:
        for role in DEMO_ROLES:
            name = f"{office}-{role}"
            password = token_urlsafe(9)
            if accounts.store.get(name) is None:
                account = accounts.add(
                    name, office, [role], password, department if role == "department" else None
                )
            else:
                account = accounts.reset_password(name, password)
            made.append((account, password))
    return made


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items() if v is not None}
    return value


def _explain(doing: str, response: httpx.Response) -> str:
    """Which request, which status, and what the service said about it."""
    request = response.request
    said = response.text[:500]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        # shared/web.py's message already names each refused field; others only have detail.
        detail = body.get("detail")
        said = str(body.get("message") or "")
        if not said and isinstance(detail, list):
            said = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                for d in detail
                if isinstance(d, dict)
            )
        elif isinstance(detail, str) and detail not in said:
            said += f" ({detail})" if said else detail
    path = request.url.path + (f"?{request.url.query.decode()}" if request.url.query else "")
    return f"{doing}: {request.method} {path} → HTTP {response.status_code}: {said.strip()}"


def _id(body: Any, kind: str, doing: str) -> str:
    """The id in an answer: `id`, or `<kind>_id` as the events name it."""
    if isinstance(body, dict):
        for name in ("id", f"{kind}_id"):
            if isinstance(body.get(name), str):
                return str(body[name])
    raise DemoError(f"{doing}: 应答中没有 id / the answer names no id: {str(body)[:300]}")


class _Loader:
    def __init__(
        self,
        scenario: Scenario,
        urls: Mapping[str, str],
        authenticator: Authenticator,
        concurrency: int,
        wait_seconds: float,
        statistics_seconds: float,
        interrupted: Callable[[], bool],
        say: Callable[[str], None],
        notices_seconds: float,
    ) -> None:
        self.scenario = scenario
        self.text = content()
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.authenticator = authenticator
        self.concurrency = concurrency
        self.wait_seconds = wait_seconds
        self.statistics_seconds = statistics_seconds
        self.notices_seconds = notices_seconds
        self.interrupted = interrupted
        self.say = say
        self.tokens: dict[tuple[str, str, str | None], str] = {}
        self.writes = self.created = self.existing = 0
        self.issues = {issue.key: issue for issue in scenario.issues}
        self.referral_cases = {c.issues[0]: c for c in scenario.cases if c.origin == "referral"}
        self.outcome_cases = {
            (c.meeting, c.outcome): c for c in scenario.cases if c.origin == "outcome"
        }
        self.letter_before = letters_in_date_order(scenario.cases)

    # --- HTTP

    def token(self, office: str, role: str, department: str | None = None) -> str:
        found = self.tokens.get((office, role, department))
        if found is None:
            subject = f"demo-{role}-{office}" + (f"-{len(self.tokens)}" if department else "")
            found = self.authenticator.mint(office, [role], subject=subject, department=department)
            self.tokens[(office, role, department)] = found
        return found

    async def send(
        self,
        method: str,
        service: str,
        path: str,
        doing: str,
        token: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        if self.interrupted():
            raise DemoInterrupted
        headers = {"Authorization": f"Bearer {token}"}
        if key is not None:
            headers["Idempotency-Key"] = f"{KEY_PREFIX}-s{self.scenario.seed}-{key}"
        url = self.urls[service] + path
        async with self.slots:
            try:
                return await self.http.request(
                    method,
                    url,
                    json=None if body is None else _json(body),
                    params=params,
                    headers=headers,
                )
            except httpx.HTTPError as error:
                raise DemoError(
                    f"{doing}: {method} {url} 无应答 / got no answer: {error!r}"
                ) from error

    async def write(
        self,
        service: str,
        path: str,
        body: dict[str, Any],
        *,
        doing: str,
        key: str,
        token: str,
        creates: bool = False,
        until_accepted: bool = False,
    ) -> Any:
        """POST once (a retry with the same key is harmless); `until_accepted` retries a 409
        while the service has not yet seen the events the write depends on."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            response = await self.send("POST", service, path, doing, token, body=body, key=key)
            if response.status_code != 409 or not until_accepted:
                break
            if time.monotonic() > deadline:
                raise DemoError(
                    _explain(doing, response) + f" (重试 {self.wait_seconds:.0f} 秒后 / "
                    f"still refused after {self.wait_seconds:.0f} s)"
                )
            await asyncio.sleep(POLL_SECONDS)
        if response.status_code not in (200, 201):
            raise DemoError(_explain(doing, response))
        self.writes += 1
        if creates:
            self.created += response.status_code == 201
            self.existing += response.status_code == 200
        return response.json()

    # --- the whole load

    async def run(self) -> LoadResult:
        self.slots = asyncio.Semaphore(self.concurrency)
        self.booking = asyncio.Lock()
        self.letter_sent = {key: asyncio.Event() for key in self.letter_before}
        loop = asyncio.get_running_loop()
        self.activity_ids = {a.key: loop.create_future() for a in self.scenario.activities}
        self.issue_ids = {key: loop.create_future() for key in self.issues}
        self.screened = {key: loop.create_future() for key in self.issues}
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as self.http:
            try:
                async with asyncio.TaskGroup() as tasks:
                    for office in self.text.offices:
                        tasks.create_task(self.reference_data(office))
                async with asyncio.TaskGroup() as tasks:
                    for activity in self.scenario.activities:
                        tasks.create_task(self.activity(activity))
                    for issue in self.scenario.issues:
                        tasks.create_task(self.issue(issue))
                    for meeting in self.scenario.meetings:
                        tasks.create_task(self.meeting(meeting))
            except* (DemoError, DemoInterrupted) as group:
                # The first failure cancelled the rest: report that one, not the cancellations.
                raise group.exceptions[0] from None
            async with asyncio.TaskGroup() as tasks:
                for issue in self.scenario.issues:
                    if issue.callback is not None:
                        tasks.create_task(self.call_back(issue))
            await self.scan_deadlines()
            self.say(
                f"已写入 {self.writes} 次，等待查询统计（最多 {self.statistics_seconds:.0f} 秒）/ "
                f"{self.writes} writes done, waiting for the projections (up to "
                f"{self.statistics_seconds:.0f} s) ..."
            )
            statistics = await self.statistics()
            notices = await self.notices() if "notifications" in self.urls else None
        return LoadResult(
            writes=self.writes,
            created=self.created,
            existing=self.existing,
            statistics=statistics,
            rows=compare(statistics.get("total", {}), self.scenario.expected),
            notices=notices,
        )

    async def reference_data(self, office: str) -> None:
        """Departments, venues and the people its meetings invite (协商会议基础数据)."""
        entries: list[tuple[str, dict[str, Any], str, str]] = [
            ("/departments", {"name": name}, f"department {name}", f"department-{office}-{n}")
            for n, name in enumerate(self.scenario.departments)
        ]
        entries += [
            ("/venues", {"name": name, "address": address}, f"venue {name}", f"venue-{office}-{n}")
            for n, (name, address) in enumerate(self.scenario.venues)
        ]
        entries += [
            (
                "/people",
                {
                    "person_id": p.person_id,
                    "name": p.name,
                    "kind": p.kind,
                    "department": p.department,
                },
                f"{p.person_id} ({p.name})",
                f"person-{p.person_id}",
            )
            for p in self.scenario.people
            if p.office == office
        ]
        # One after another: an office's reference data is one record in the meetings service,
        # and concurrent changes to it would only be refused and retried.
        for path, body, what, key in entries:
            await self.write(
                "meetings",
                path,
                body,
                doing=f"登记基础数据 / registering {what} for {office}",
                key=key,
                token=self.token(office, "meetings"),
                creates=True,
            )

    # --- intake

    async def activity(self, activity: Activity) -> None:
        doing = f"记录委员进基层活动 / recording activity {activity.key}"
        token = self.token(activity.office, "clerk")
        body = {
            "office": activity.office,
            "held_at": activity.held_at,
            "community": activity.community,
            "liaison_station": activity.liaison_station,
            "activity_group": activity.activity_group,
            "members": list(activity.members),
            "note": activity.note,
        }
        answer = await self.write(
            "intake",
            "/activities",
            body,
            doing=doing,
            key=f"activity-{activity.key}",
            token=token,
            creates=True,
        )
        activity_id = _id(answer, "activity", doing)
        for n, correction in enumerate(activity.corrections):
            await self.write(
                "intake",
                f"/activities/{activity_id}/corrections",
                {
                    "members": list(correction.members),
                    "reason": correction.reason,
                    "corrected_at": correction.corrected_at,
                },
                doing=f"更正活动 / correcting activity {activity.key}",
                key=f"activity-{activity.key}-correction-{n}",
                token=token,
            )
        self.activity_ids[activity.key].set_result(activity_id)

    async def issue(self, issue: Issue) -> None:
        doing = f"收集问题 / submitting issue {issue.key}"
        activity_id = await self.activity_ids[issue.activity] if issue.activity else None
        body = {
            "office": issue.office,
            "title": issue.title,
            "description": issue.description,
            "category": issue.category,
            "submitted_at": issue.submitted_at,
            "community": issue.community,
            "liaison_station": issue.liaison_station,
            "source": issue.source,
            "activity_id": activity_id,
            "recorded_by": issue.recorded_by,
            "key_problem": issue.key_problem,
            "reporter_name": issue.reporter_name,
            "reporter_phone": issue.reporter_phone,
        }
        answer = await self.write(
            "intake",
            "/issues",
            body,
            doing=doing,
            key=f"issue-{issue.key}",
            token=self.token(issue.office, "clerk"),
            creates=True,
        )
        issue_id = _id(answer, "issue", doing)
        self.issue_ids[issue.key].set_result(issue_id)
        screening = issue.screening
        if screening is None:
            return
        duplicate_of = None
        if screening.duplicate_of:
            duplicate_of = await self.issue_ids[screening.duplicate_of]
            await self.screened[screening.duplicate_of]
        leader = self.token(issue.office, "leader")
        await self.write(
            "intake",
            f"/issues/{issue_id}/screening",
            {
                "decision": screening.decision,
                "screened_at": screening.screened_at,
                "report_title": screening.report_title,
                "department": screening.department,
                "deadline": screening.deadline,
                "answer": screening.answer,
                "duplicate_of": duplicate_of,
                "reason": screening.reason,
            },
            doing=f"筛选议题 / screening issue {issue.key} as {screening.decision}",
            key=f"issue-{issue.key}-screening",
            token=leader,
        )
        self.screened[issue.key].set_result(None)
        if issue.closed_at:
            await self.write(
                "intake",
                f"/issues/{issue_id}/close",
                {"closed_at": issue.closed_at},
                doing=f"办结归档 / closing issue {issue.key}",
                key=f"issue-{issue.key}-close",
                token=leader,
                # Resolved on the spot: should the resolution follow the screening
                # asynchronously, closing waits for it.
                until_accepted=True,
            )
        if screening.decision == "refer":
            case = self.referral_cases[issue.key]
            (found,) = await self.find_cases(
                {"issue_id": issue_id}, 1, issue.office, f"转办 / the referral of {issue.key}"
            )
            await self.supervise(case, found)

    async def call_back(self, issue: Issue) -> None:
        """回访, once intake has the issue resolved (a case's verification arrives by events)."""
        callback = issue.callback
        assert callback is not None
        issue_id = await self.issue_ids[issue.key]
        await self.write(
            "intake",
            f"/issues/{issue_id}/callbacks",
            {
                "reached": callback.reached,
                "satisfaction": callback.satisfaction,
                "note": callback.note,
                "called_at": callback.called_at,
            },
            doing=f"回访 / calling back about issue {issue.key}",
            key=f"issue-{issue.key}-callback",
            token=self.token(issue.office, "clerk"),
            until_accepted=True,
        )

    # --- meetings

    async def meeting(self, meeting: Meeting) -> None:
        # Planning books venues and people: one meeting at a time, as bookings of the same
        # person by concurrent meetings would only be refused and retried.
        async with self.booking:
            meeting_id = await self.plan(meeting)
        if meeting_id is None:
            return
        token = self.token(meeting.office, "meetings")
        path = f"/meetings/{meeting_id}"
        await self.topics(meeting, path, token)
        await self.hold(meeting, path, token)
        await self.conclude(meeting, meeting_id, path, token)

    async def plan(self, meeting: Meeting) -> str | None:
        """Planned, maybe postponed or cancelled, participants invited; None if cancelled."""
        token = self.token(meeting.office, "meetings")
        doing = f"计划协商会议 / planning meeting {meeting.key}"
        answer = await self.write(
            "meetings",
            "/meetings",
            {
                "office": meeting.office,
                "joint_offices": list(meeting.joint_offices),
                "kind": meeting.kind,
                "title": meeting.title,
                "theme": meeting.theme,
                "starts_at": meeting.starts_at,
                "ends_at": meeting.ends_at,
                "venue": meeting.venue,
                "submission_deadline": meeting.submission_deadline,
                "planned_at": meeting.planned_at,
            },
            doing=doing,
            key=f"meeting-{meeting.key}",
            token=token,
            creates=True,
        )
        meeting_id = _id(answer, "meeting", doing)
        path = f"/meetings/{meeting_id}"
        if meeting.postponement:
            postponed = meeting.postponement
            await self.write(
                "meetings",
                f"{path}/postpone",
                {
                    "starts_at": postponed.starts_at,
                    "ends_at": postponed.ends_at,
                    "submission_deadline": postponed.ends_at if meeting.kind == "written" else None,
                    "reason": postponed.reason,
                    "postponed_at": postponed.postponed_at,
                },
                doing=f"会议延期 / postponing {meeting.key}",
                key=f"meeting-{meeting.key}-postpone",
                token=token,
            )
        if meeting.cancellation:
            await self.write(
                "meetings",
                f"{path}/cancel",
                {
                    "reason": meeting.cancellation.reason,
                    "cancelled_at": meeting.cancellation.cancelled_at,
                },
                doing=f"取消会议 / cancelling {meeting.key}",
                key=f"meeting-{meeting.key}-cancel",
                token=token,
            )
            return None
        for invitation in meeting.invitations:
            await self.invite(meeting, path, invitation)
        return meeting_id

    async def topics(self, meeting: Meeting, path: str, token: str) -> None:
        for issue_key, added_at in zip(meeting.topics, meeting.topics_added_at, strict=True):
            issue_id = await self.issue_ids[issue_key]
            await self.screened[issue_key]
            await self.write(
                "meetings",
                f"{path}/topics",
                {"issue_id": issue_id, "added_at": added_at},
                doing=f"列入议题 / adding topic {issue_key} to {meeting.key}",
                key=f"meeting-{meeting.key}-topic-{issue_key}",
                token=token,
                # Meetings learns from intake's events that the issue is a topic.
                until_accepted=True,
            )

    async def conclude(self, meeting: Meeting, meeting_id: str, path: str, token: str) -> None:
        """Outcomes, each of which supervision opens a case for; then each case is worked."""
        await self.write(
            "meetings",
            f"{path}/conclusion",
            {
                "concluded_at": meeting.concluded_at,
                "outcomes": [
                    {
                        "issue_ids": [self.issue_ids[k].result() for k in outcome.issues],
                        "recommendation": outcome.recommendation,
                        "department": outcome.department,
                        "deadline": outcome.deadline,
                    }
                    for outcome in meeting.outcomes
                ],
            },
            doing=f"形成协商成果 / concluding {meeting.key}",
            key=f"meeting-{meeting.key}-conclusion",
            token=token,
        )
        found = await self.find_cases(
            {"meeting_id": meeting_id},
            len(meeting.outcomes),
            meeting.office,
            f"协商成果 / the outcomes of {meeting.key}",
        )
        by_issues = {frozenset(str(i) for i in case.get("issue_ids", [])): case for case in found}
        supervising = []
        for n, outcome in enumerate(meeting.outcomes):
            issue_ids = frozenset(self.issue_ids[k].result() for k in outcome.issues)
            if issue_ids not in by_issues:
                raise DemoError(
                    f"协商成果 / outcome {n + 1} of {meeting.key}: 没有覆盖这些问题的督办件 / "
                    f"no case covers issues {sorted(issue_ids)}; cases: {found}"
                )
            case = self.outcome_cases[(meeting.key, n)]
            supervising.append(self.supervise(case, by_issues[issue_ids]))
        await asyncio.gather(*supervising)

    async def invite(self, meeting: Meeting, path: str, invitation: Invitation) -> None:
        token = self.token(meeting.office, "meetings")
        await self.write(
            "meetings",
            f"{path}/invitations",
            {"person_id": invitation.person_id, "role": invitation.role},
            doing=f"邀请 / inviting {invitation.person_id} to {meeting.key}",
            key=f"meeting-{meeting.key}-invite-{invitation.person_id}",
            token=token,
        )
        await self.write(
            "meetings",
            f"{path}/invitations/{invitation.person_id}/reply",
            {"accepted": invitation.accepted},
            doing=f"回复邀请 / {invitation.person_id} replying to {meeting.key}",
            key=f"meeting-{meeting.key}-reply-{invitation.person_id}",
            token=token,
        )

    async def hold(self, meeting: Meeting, path: str, token: str) -> None:
        """Held with its attendance; a written consultation takes opinions and is closed."""
        if meeting.kind != "written":
            await self.write(
                "meetings",
                f"{path}/held",
                {"held_at": meeting.held_at, "attendance": list(meeting.attendance)},
                doing=f"召开会议 / holding {meeting.key}",
                key=f"meeting-{meeting.key}-held",
                token=token,
            )
            return
        for n, opinion in enumerate(meeting.opinions):
            await self.write(
                "meetings",
                f"{path}/opinions",
                {
                    "person_id": opinion.person_id,
                    "opinion": opinion.opinion,
                    "received_at": opinion.received_at,
                },
                doing=f"书面意见 / opinion of {opinion.person_id} on {meeting.key}",
                key=f"meeting-{meeting.key}-opinion-{n}",
                token=token,
            )
        await self.write(
            "meetings",
            f"{path}/close",
            {"closed_at": meeting.closed_at},
            doing=f"结束书面协商 / closing {meeting.key}",
            key=f"meeting-{meeting.key}-close",
            token=token,
        )

    # --- supervision

    async def find_cases(
        self, params: dict[str, str], count: int, office: str, what: str
    ) -> list[dict[str, Any]]:
        """Supervision opens cases from events: wait until `count` of them are listed."""
        doing = f"查找督办件 / finding the cases of {what}"
        token = self.token(office, "supervisor")
        deadline = time.monotonic() + self.wait_seconds
        while True:
            response = await self.send(
                "GET", "supervision", "/cases", doing, token, params={**params, "page_size": 200}
            )
            if response.status_code != 200:
                raise DemoError(_explain(doing, response))
            items: list[dict[str, Any]] = response.json().get("items", [])
            if len(items) >= count:
                return items
            if time.monotonic() > deadline:
                raise DemoError(
                    f"{doing}: 等待 {self.wait_seconds:.0f} 秒后 GET /cases?{params} 只列出 "
                    f"{len(items)}/{count} 个 / after {self.wait_seconds:.0f} s it lists "
                    f"{len(items)} of {count} cases — is supervision consuming the events?"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def supervise(self, case: Case, found: Mapping[str, Any]) -> None:
        """The letter and the department's work, step by step, as far as the case got."""
        doing = f"督办 / supervising case {case.key}"
        case_id = _id(found, "case", doing)
        office = str(found.get("office") or case.office)
        for n, step in enumerate(case.steps):
            department = case.department if step.role == "department" else None
            key = f"case-{case.key}-{n}-{step.action}"
            # An office numbers its letters in date order: each waits for the one before it.
            if (before := self.letter_before.get(key)) is not None:
                await self.letter_sent[before].wait()
            await self.write(
                "supervision",
                f"/cases/{case_id}/{step.action}",
                {**step.body, CASE_TIME_FIELDS[step.action]: step.at},
                doing=f"{doing}: {step.action}",
                key=key,
                token=self.token(office, step.role, department),
                creates=step.action == "letters",
            )
            if key in self.letter_sent:
                self.letter_sent[key].set()

    async def scan_deadlines(self) -> None:
        """Judge the deadlines now that the whole year is in (not mid-load)."""
        doing = "检查督办时限 / scanning the supervision deadlines"
        token = self.token(self.text.prefecture, "supervisor")
        response = await self.send("POST", "supervision", "/scheduler/scan", doing, token)
        if response.status_code != 200:
            raise DemoError(_explain(doing, response))

    # --- the read side

    async def statistics(self) -> dict[str, Any]:
        """Wait until the projections show the expected figures (or the time is up)."""
        doing = f"查询 {YEAR} 年统计 / reading the {YEAR} statistics"
        token = self.token(self.text.prefecture, "viewer")
        deadline = time.monotonic() + self.statistics_seconds
        while True:
            response = await self.send("GET", "projections", f"/statistics/{YEAR}", doing, token)
            if response.status_code != 200:
                raise DemoError(_explain(doing, response))
            statistics: dict[str, Any] = response.json()
            rows = compare(statistics.get("total", {}), self.scenario.expected)
            if all(r.ok for r in rows) or time.monotonic() > deadline:
                return statistics
            await asyncio.sleep(POLL_SECONDS * 2)

    async def notices(self) -> Notices:
        """Wait until the notifications service has read every event and has nothing due now
        or in flight (or the time is up): what is left waits for quiet hours, a retry or a
        later time, and goes out while the stack runs."""
        self.say(
            f"等待通知发出（最多 {self.notices_seconds:.0f} 秒）/ waiting for the notices to go "
            f"out (up to {self.notices_seconds:.0f} s) ..."
        )
        doing = "查询通知送达 / reading the notifications' deliveries"
        token = self.token(self.text.prefecture, "admin")
        started = time.monotonic()
        while True:
            response = await self.send("GET", "notifications", "/deliveries/summary", doing, token)
            if response.status_code != 200:
                raise DemoError(_explain(doing, response))
            summary: dict[str, Any] = response.json()
            waited = time.monotonic() - started
            if summary["settled"] or waited > self.notices_seconds:
                return Notices(summary, bool(summary["settled"]), waited)
            await asyncio.sleep(POLL_SECONDS * 2)
