"""Intake's catalog (目录) on SQLite and PostgreSQL: its lists answer as the aggregates
themselves do (every filter, the order, the totals, the China day), and it lives in the
database, so a restarted intake lists without replaying the store into memory."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from services.intake.activity import OutreachActivity
from services.intake.application import IntakeApplication
from services.intake.catalog import ActivityFilter, IssueFilter
from services.intake.domain import DEFAULT_CATEGORIES, Issue
from services.intake.open311 import service_request
from shared.clock import china_day
from shared.settings import Settings
from tests.support.serving import serving

SECRET = b"catalog-test-secret-of-32-bytes!"
OFFICES = ("yanji", "tumen", "longjing")
PLACES = (None, "进学社区", "建工街道", "河南社区")
TITLES = (
    "路灯不亮 Street LIGHT",
    "道路 Repair 修路",
    "École 学校门口",
    "下水道 100%_堵塞",
    "LIGHT 路灯",
)
# The China day turns at 16:00 UTC: moments on both sides of it, some given in +08:00.
MIDNIGHT = datetime(2020, 6, 5, 16, 0, tzinfo=UTC)
MOMENTS = (
    MIDNIGHT - timedelta(microseconds=1),
    MIDNIGHT,
    MIDNIGHT.astimezone(timezone(timedelta(hours=8))),
    MIDNIGHT + timedelta(hours=7, minutes=59),
    MIDNIGHT - timedelta(days=1, hours=3),
    MIDNIGHT + timedelta(days=2),
)


def open_intake(settings: Settings) -> IntakeApplication:
    return IntakeApplication(env=settings.event_store_env("intake"), tracking_secret=SECRET)


@pytest.fixture
async def intake(store_settings: Settings) -> AsyncIterator[IntakeApplication]:
    app = open_intake(store_settings)
    async with serving(app):
        yield app


async def store_history(app: IntakeApplication) -> list[UUID]:
    """Issues of three offices in every status the screening gives, and activities."""
    ids = []
    for n in range(36):
        place = PLACES[n % 4]
        issue, _ = await app.submit_issue(
            office=OFFICES[n % 3],
            title=TITLES[n % 5],
            description=f"第 {n} 件",
            category=DEFAULT_CATEGORIES[n % 2],
            submitted_at=MOMENTS[n % 6],
            community=place if n % 2 else None,
            liaison_station=None if n % 2 else place,
            source="online" if n % 4 == 1 else None,
            key_problem=n % 7 == 0,
            idempotency_key=f"catalog-{n}",
        )
        ids.append(issue.id)
        decision = (None, "topic", "rejected", "answered")[n % 4]
        if decision is not None:
            await app.screen_issue(
                issue.id, decision, "leader-1", reason="不属于政协", answer="已答复"
            )
    for n in range(8):
        await app.record_activity(
            OFFICES[n % 3],
            MOMENTS[n % 6],
            ["张三"],
            community=PLACES[1 + n % 3] if n % 2 else None,
            liaison_station=None if n % 2 else PLACES[1 + n % 3],
            idempotency_key=f"activity-{n}",
        )
    return ids


def matches(where: IssueFilter, issue: Issue) -> bool:
    """The filter as the in-memory catalog applied it to each aggregate."""
    day = china_day(issue.submitted_at)
    return (
        (where.offices is None or issue.office in where.offices)
        and (where.status is None or issue.status == where.status)
        and (where.category is None or issue.category == where.category)
        and (where.community is None or where.community in (issue.community, issue.liaison_station))
        and (where.date_from is None or day >= where.date_from)
        and (where.date_to is None or day <= where.date_to)
        and (where.key_problem is None or issue.key_problem == where.key_problem)
        and (where.title_holds is None or where.title_holds.casefold() in issue.title.casefold())
    )


FILTERS = [
    IssueFilter(),
    IssueFilter(offices=frozenset({"yanji", "tumen"})),
    IssueFilter(status="topic"),
    IssueFilter(status="resolved", offices=frozenset({"longjing"})),
    IssueFilter(category=DEFAULT_CATEGORIES[1]),
    IssueFilter(community="进学社区"),
    IssueFilter(community="进学社区", status="topic"),
    IssueFilter(community="建工街道"),
    IssueFilter(date_from=date(2020, 6, 6)),
    IssueFilter(date_to=date(2020, 6, 5)),
    IssueFilter(date_from=date(2020, 6, 6), date_to=date(2020, 6, 6)),
    IssueFilter(key_problem=True),
    IssueFilter(key_problem=False, offices=frozenset({"yanji"})),
    IssueFilter(title_holds="light"),
    IssueFilter(title_holds="LiGhT", community="河南社区"),
    IssueFilter(title_holds="éCOLE"),
    IssueFilter(title_holds="路灯"),
    IssueFilter(title_holds="100%_"),
    IssueFilter(title_holds="%"),
    IssueFilter(title_holds="_"),
    IssueFilter(title_holds="no such title"),
]


async def test_the_lists_answer_as_the_aggregates_do(intake: IntakeApplication) -> None:
    ids = await store_history(intake)
    issues = [intake.get_issue(i) for i in ids]
    narrowed = 0
    for where, page_size in itertools.product(FILTERS, (5, 50)):
        expected = sorted(
            (i for i in issues if matches(where, i)),
            key=lambda i: (i.submitted_at, i.id),
            reverse=True,
        )
        for page in (1, 2, 3):
            found = intake.list_issues(where, page, page_size)
            start = (page - 1) * page_size
            assert found.total == len(expected), where
            assert [i.id for i in found.items] == [
                i.id for i in expected[start : start + page_size]
            ], (where, page)
        narrowed += 0 < len(expected) < len(issues)
    # The history gives each filter something to keep and something to leave.
    assert narrowed == 2 * (len(FILTERS) - 2)


async def test_activities_open311_searches_and_codes_answer_as_the_aggregates_do(
    intake: IntakeApplication,
) -> None:
    ids = await store_history(intake)
    issues = [intake.get_issue(i) for i in ids]
    found = intake.list_activities(ActivityFilter(community="进学社区"), 1, 50)
    assert {a.community or a.liaison_station for a in found.items} == {"进学社区"}
    assert found.total == 3
    everything = intake.list_activities(ActivityFilter(date_from=date(2020, 6, 6)), 1, 50)
    held = [a.held_at for a in everything.items]
    assert held == sorted(held, reverse=True) and everything.total == 5
    assert all(isinstance(a, OutreachActivity) for a in everything.items)

    start, end = MIDNIGHT - timedelta(microseconds=1), MIDNIGHT + timedelta(hours=8)
    for office, statuses in itertools.product((None, "tumen"), (None, ["open"], ["closed"])):
        requests = intake.service_requests(office, None, None, start, end, statuses)
        expected = sorted(
            (
                i
                for i in issues
                if i.source == "online"
                and (office is None or i.office == office)
                and start <= i.submitted_at <= end
                and (statuses is None or service_request(i)["status"] in statuses)
            ),
            key=lambda i: (i.submitted_at, i.id),
            reverse=True,
        )
        assert [i.id for i in requests] == [i.id for i in expected]
    assert intake.service_requests(None, None, None, start, end, None)

    for issue in issues[:5]:
        tracked = intake.track(intake.tracking_code(issue))
        assert tracked is not None and tracked[0].id == issue.id
    assert intake.track("not-a-code") is None


async def test_a_restarted_intake_lists_from_the_catalog_in_its_database(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = open_intake(store_settings)
    async with serving(first):
        ids = await store_history(first)
        before = first.list_issues(IssueFilter(title_holds="路灯"), 1, 10)

    again = open_intake(store_settings)
    try:
        read: list[tuple[int, int]] = []
        select = again.recorder.select_notifications

        def counted(start: int, limit: int, *args: Any, **kwargs: Any) -> Any:
            found = select(start, limit, *args, **kwargs)
            read.append((start, len(found)))
            return found

        monkeypatch.setattr(again.recorder, "select_notifications", counted)
        after = again.list_issues(IssueFilter(title_holds="路灯"), 1, 10)
        assert [i.id for i in after.items] == [i.id for i in before.items]
        assert after.total == before.total
        # Caught up where the first left off: no notification read again.
        last = again.recorder.max_notification_id()
        assert read == [(last, 0)]

        issue = again.get_issue(ids[0])
        issue.screen("topic", datetime.now(UTC), "leader-1", datetime.now(UTC))
        again.save(issue)
        read.clear()
        assert again.list_issues(IssueFilter(status="topic"), 1, 50).total == 10
        assert read == [(last, 1), (last + 1, 0)]
        assert not any(isinstance(v, dict) and len(v) >= 36 for v in vars(again.catalog).values())
    finally:
        again.close()


async def test_the_catalog_is_warmed_up_at_start_so_the_first_list_reads_nothing_more(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = open_intake(store_settings)
    async with serving(first):
        await store_history(first)

    # Nothing listed yet: the catalog is where an upgraded store's is, at the start.
    again = open_intake(store_settings)
    try:
        monkeypatch.setattr(again.catalog, "page_read", 7)
        batches: list[bool] = []
        batch = again.catalog.catch_up_batch

        def counted() -> bool:
            batches.append(more := batch())
            return more

        monkeypatch.setattr(again.catalog, "catch_up_batch", counted)
        await again.warm_up_catalog()
        last = again.recorder.max_notification_id()
        assert last is not None and batches == [True] * -(-last // 7) + [False]

        batches.clear()
        listed = again.list_issues(IssueFilter(), 1, 500)
        assert batches == [False]  # the list found everything applied already
        assert listed.total == len(listed.items) > 0
    finally:
        again.close()
