"""The read model: an issue's combined status, yearly figures, year boundary, as-of, drill-down."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from services.projections.queries import (
    FIGURES,
    counted_as_of,
    drill_down,
    fact_day_end,
    recount,
    statistics,
)
from services.projections.views import ProjectionView, open_projection_view
from shared.clock import CHINA
from shared.consumer import Delivered
from shared.contracts import (
    ActivityCorrectedV1,
    ActivityRecordedV1,
    CaseOpenedV1,
    CaseOverdueV1,
    CaseReopenedV1,
    Contract,
    Envelope,
    IssueClosedV1,
    IssueReopenedV1,
    IssueResolvedV1,
    IssueScreenedV1,
    IssueSubmittedV1,
    LetterIssuedV1,
    MeetingHeldV1,
    TopicAddedV1,
    TopicRemovedV1,
)
from tests.support.history import batches, history

OFFICES = ["yanbian", "yanji", "tumen", "dunhua", "hunchun"]


def china(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=CHINA)  # type: ignore[misc]


class Streams:
    """Applies contracts to a view as the three streams would deliver them, one by one."""

    def __init__(self, view: ProjectionView) -> None:
        self.view = view
        self.positions = {"INTAKE": 0, "MEETINGS": 0, "SUPERVISION": 0}
        self.ids = itertools.count(1)

    def send(self, *contracts: Contract) -> None:
        for contract in contracts:
            stream = contract.service.upper()
            self.positions[stream] += 1
            office = getattr(contract, "office", None) or "yanji"
            envelope = Envelope.wrap(
                f"event-{next(self.ids)}",
                datetime.now(CHINA),
                contract.subject(office if isinstance(office, str) else "yanji"),
                contract,
            )
            message = Delivered(self.positions[stream], envelope, contract)
            self.view.apply([message], Tracking(stream, self.positions[stream]))


@pytest.fixture
def view(tmp_path: Path) -> Iterator[ProjectionView]:
    opened = open_projection_view(str(tmp_path / "projections.sqlite"))
    try:
        yield opened
    finally:
        opened.datastore.close()


@pytest.fixture
def streams(view: ProjectionView) -> Streams:
    return Streams(view)


def submitted(issue_id: UUID, at: datetime, office: str = "yanji", key: bool = False) -> Contract:
    return IssueSubmittedV1(
        issue_id=issue_id,
        office=office,
        title="小区路灯损坏",
        description="路灯夜间不亮",
        category="城市管理",
        submitted_at=at,
        key_problem=key,
    )


def screened(issue_id: UUID, at: datetime, decision: str = "topic") -> Contract:
    return IssueScreenedV1(
        issue_id=issue_id,
        office="yanji",
        decision=decision,  # type: ignore[arg-type]
        screened_at=at,
        screened_by="leader",
        title="小区路灯损坏",
        category="城市管理",
        department="城管局" if decision == "refer" else None,
    )


def resolved(issue_id: UUID, at: datetime) -> Contract:
    return IssueResolvedV1(issue_id=issue_id, office="yanji", resolved_at=at, via="answered")


def status_of(view: ProjectionView, issue_id: UUID, until: str | None = None) -> str:
    row = view.issue(str(issue_id), until)
    assert row is not None
    return str(row["status"])


def test_an_issues_status_follows_it_through_the_three_services_and_back_on_reopening(
    view: ProjectionView, streams: Streams
) -> None:
    issue, meeting, case = uuid4(), uuid4(), uuid4()
    day = china(2020, 6, 4, 15, 30)
    steps: list[tuple[Contract, str]] = [
        (submitted(issue, day), "submitted"),
        (screened(issue, day + timedelta(days=1)), "topic"),
        (
            TopicAddedV1(
                meeting_id=meeting,
                offices=["yanji"],
                issue_id=issue,
                issue_office="yanji",
                added_at=day + timedelta(days=2),
            ),
            "on_agenda",
        ),
        (
            MeetingHeldV1(
                meeting_id=meeting,
                offices=["yanji"],
                kind="thematic",
                held_at=day + timedelta(days=3),
                attendance=[],
                issue_ids=[issue],
            ),
            "consulted",
        ),
        (
            CaseOpenedV1(
                case_id=case,
                office="yanji",
                origin="outcome",
                meeting_id=meeting,
                issue_ids=[issue],
                department="城管局",
                deadline=date(2020, 7, 1),
                requirements="按期办结",
                opened_at=day + timedelta(days=4),
            ),
            "under_supervision",
        ),
        (
            CaseOverdueV1(
                case_id=case,
                office="yanji",
                department="城管局",
                deadline=date(2020, 7, 1),
                issue_ids=[issue],
                overdue_at=china(2020, 7, 1, 23, 59, 59),
            ),
            "overdue",
        ),
        (resolved(issue, china(2020, 7, 10)), "resolved"),
        (IssueClosedV1(issue_id=issue, office="yanji", closed_at=china(2020, 7, 11)), "closed"),
        (
            IssueReopenedV1(
                issue_id=issue, office="yanji", reopened_at=china(2020, 8, 1), reason="又坏了"
            ),
            "submitted",
        ),
        (screened(issue, china(2020, 8, 2), "refer"), "referred"),
    ]
    for contract, expected in steps:
        streams.send(contract)
        assert status_of(view, issue) == expected, contract.name

    row = view.issue(str(issue))
    assert row is not None
    assert [step["step"] for step in row["timeline"]][:4] == [
        "submitted",
        "screened",
        "topic_added",
        "meeting_held",
    ]
    assert row["timeline"][2]["meeting_id"] == str(meeting)
    assert row["departments"] == "城管局"
    # As it stood at the end of a past day: the day before the meeting it was on the agenda.
    assert status_of(view, issue, fact_day_end(date(2020, 6, 6))) == "on_agenda"
    assert status_of(view, issue, fact_day_end(date(2020, 7, 5))) == "overdue"


def test_a_topic_taken_off_the_agenda_is_a_topic_again(
    view: ProjectionView, streams: Streams
) -> None:
    issue, meeting = uuid4(), uuid4()
    day = china(2020, 6, 4)
    topic = {
        "meeting_id": meeting,
        "offices": ["yanji"],
        "issue_id": issue,
        "issue_office": "yanji",
    }
    streams.send(
        submitted(issue, day),
        screened(issue, day + timedelta(hours=1)),
        TopicAddedV1(**topic, added_at=day + timedelta(hours=2)),
        TopicRemovedV1(**topic, removed_at=day + timedelta(hours=3)),
    )
    assert status_of(view, issue) == "topic"


def test_an_issue_submitted_half_an_hour_before_new_year_in_china_is_a_2020_issue(
    view: ProjectionView, streams: Streams
) -> None:
    late, early = uuid4(), uuid4()
    streams.send(
        submitted(late, china(2020, 12, 31, 23, 30)),
        submitted(early, datetime.fromisoformat("2020-12-31T16:10:00+00:00")),  # 00:10 in China
        resolved(late, china(2021, 1, 1, 0, 5)),
    )
    assert view.issues_collected(2020) == {"yanji": 1}
    assert view.issues_collected(2021) == {"yanji": 1}
    year_2020 = statistics(view, 2020, OFFICES, True, None)
    year_2021 = statistics(view, 2021, OFFICES, True, None)
    assert year_2020["total"]["issues_resolved"] == 0
    assert year_2021["total"]["issues_resolved"] == 1
    assert year_2021["total"]["median_days_to_resolution"] == 1.0


def test_an_issue_resolved_twice_in_a_year_counts_once_and_in_each_year_it_was_resolved(
    view: ProjectionView, streams: Streams
) -> None:
    issue = uuid4()
    reopen = IssueReopenedV1(
        issue_id=issue, office="yanji", reopened_at=china(2020, 5, 1), reason="又坏了"
    )
    streams.send(
        submitted(issue, china(2020, 3, 1), key=True),
        resolved(issue, china(2020, 3, 11)),
        reopen,
        resolved(issue, china(2020, 5, 3)),
        IssueReopenedV1(
            issue_id=issue, office="yanji", reopened_at=china(2020, 12, 1), reason="复发"
        ),
        resolved(issue, china(2021, 1, 5)),
    )
    for year, expected in ((2020, 1), (2021, 1)):
        figures = statistics(view, year, OFFICES, True, None)["total"]
        assert figures["issues_resolved"] == expected
        assert figures["key_problems_resolved"] == expected
    # The days of the first resolution in the year: 10 days in 2020.
    assert statistics(view, 2020, OFFICES, True, None)["total"]["median_days_to_resolution"] == 10


def test_a_key_problem_is_what_the_latest_screening_says(
    view: ProjectionView, streams: Streams
) -> None:
    flagged, unflagged = uuid4(), uuid4()
    for issue, at_submission, at_screening in ((flagged, False, True), (unflagged, True, False)):
        streams.send(
            submitted(issue, china(2020, 3, 1), key=at_submission),
            screened(issue, china(2020, 3, 2)).model_copy(update={"key_problem": at_screening}),
            resolved(issue, china(2020, 3, 11)),
        )
    figures = statistics(view, 2020, OFFICES, True, None)["total"]
    assert (figures["issues_resolved"], figures["key_problems_resolved"]) == (2, 1)
    assert bool(view.issue(str(flagged), None)["key_problem"]) is True
    assert bool(view.issue(str(unflagged), None)["key_problem"]) is False


def test_a_joint_meeting_counts_for_each_office_and_once_in_the_total(
    view: ProjectionView, streams: Streams
) -> None:
    streams.send(
        MeetingHeldV1(
            meeting_id=uuid4(),
            offices=["yanji", "tumen"],
            kind="onsite",
            held_at=china(2020, 9, 1, 9),
            attendance=[],
            issue_ids=[],
        )
    )
    answer = statistics(view, 2020, OFFICES, True, None)
    held = {row["office"]: row["meetings_held"]["onsite"] for row in answer["offices"]}
    assert held == {"yanbian": 0, "yanji": 1, "tumen": 1, "dunhua": 0, "hunchun": 0}
    assert answer["total"]["meetings_held"] == {"thematic": 0, "onsite": 1, "written": 0}
    total, items = drill_down(view, "meetings_held", 2020, ["tumen"], None, None, 50, 0)
    assert total == 1 and items[0]["offices"] == ["yanji", "tumen"]


def test_member_participations_count_the_members_after_corrections_as_of_each_day(
    view: ProjectionView, streams: Streams
) -> None:
    activity = uuid4()
    streams.send(
        ActivityRecordedV1(
            activity_id=activity,
            office="yanji",
            held_at=china(2020, 6, 4, 14),
            members=["甲", "乙", "丙", "丁"],
        ),
        ActivityCorrectedV1(
            activity_id=activity,
            office="yanji",
            members=["甲", "乙"],
            reason="名单有误",
            corrected_at=china(2020, 6, 10, 9),
        ),
    )
    now = statistics(view, 2020, ["yanji"], False, None)["total"]
    before = statistics(view, 2020, ["yanji"], False, date(2020, 6, 5))["total"]
    assert (now["outreach_activities"], now["member_participations"]) == (1, 2)
    assert (before["outreach_activities"], before["member_participations"]) == (1, 4)
    _, items = drill_down(
        view, "member_participations", 2020, ["yanji"], date(2020, 6, 5), None, 50, 0
    )
    assert [item["members"] for item in items] == [4]
    assert len(items[0]["event_ids"]) == 1  # the correction came later


def test_letters_and_overdue_cases_count_in_their_own_year_and_office(
    view: ProjectionView, streams: Streams
) -> None:
    case = uuid4()
    streams.send(
        LetterIssuedV1(
            case_id=case,
            office="tumen",
            department="住建局",
            number="图政协督〔2020〕1号",
            year=2020,
            sequence=1,
            deadline=date(2021, 1, 15),
            requirements="按期办结",
            issued_at=china(2020, 12, 1),
        ),
        CaseOverdueV1(
            case_id=case,
            office="tumen",
            department="住建局",
            deadline=date(2021, 1, 15),
            issue_ids=[],
            overdue_at=china(2021, 1, 15, 23, 59, 59),
        ),
    )
    assert statistics(view, 2020, ["tumen"], False, None)["total"]["letters_issued"] == 1
    assert statistics(view, 2021, ["tumen"], False, None)["total"]["cases_overdue"] == 1
    assert statistics(view, 2020, ["yanji"], False, None)["total"]["letters_issued"] == 0
    _, letters = drill_down(view, "letters_issued", 2020, None, None, None, 50, 0)
    assert letters[0]["number"] == "图政协督〔2020〕1号"


def test_cases_sent_back_by_unsatisfied_residents_count_once_a_year_and_drill_down(
    view: ProjectionView, streams: Streams
) -> None:
    by_resident, by_office = uuid4(), uuid4()

    def sent_back(case: UUID, at: datetime, cause: str) -> Contract:
        return CaseReopenedV1(
            case_id=case,
            office="tumen",
            department="住建局",
            reason="居民回访不满意" if cause == "callback" else "仍未修好",
            deadline=date(2021, 3, 1),
            reopened_at=at,
            cause=cause,  # type: ignore[arg-type]
        )

    streams.send(
        sent_back(by_resident, china(2020, 11, 2, 10), "callback"),
        sent_back(by_resident, china(2020, 12, 20, 10), "callback"),
        sent_back(by_resident, china(2021, 1, 5, 10), "callback"),
        sent_back(by_office, china(2020, 11, 3, 10), "office"),
    )
    figure = "cases_reopened_by_callback"
    assert statistics(view, 2020, ["tumen"], False, None)["total"][figure] == 1
    assert statistics(view, 2021, ["tumen"], False, None)["total"][figure] == 1
    assert statistics(view, 2020, ["tumen"], False, date(2020, 11, 1))["total"][figure] == 0
    assert statistics(view, 2020, ["yanji"], False, None)["total"][figure] == 0
    total, items = drill_down(view, figure, 2020, ["tumen"], None, None, 50, 0)
    assert (total, [item["case_id"] for item in items]) == (1, [str(by_resident)])
    assert len(items[0]["event_ids"]) == 2


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectionView]:
    """A generated history of 600 issues across the three streams."""
    loaded_view = open_projection_view(str(tmp_path_factory.mktemp("loaded") / "p.sqlite"))
    for stream, messages in history(600, seed=3).items():
        for batch in batches(messages, 97):
            loaded_view.apply(batch, Tracking(stream, batch[-1].position))
    try:
        yield loaded_view
    finally:
        loaded_view.datastore.close()


@pytest.mark.parametrize("year", [2020, 2021])
def test_the_precomputed_counters_equal_a_recount_from_the_facts(
    loaded: ProjectionView, year: int
) -> None:
    counts, days = loaded.counters(year)
    assert counts, "the history has figures in this year"
    assert recount(loaded, year) == (counts, days)


@pytest.mark.parametrize("year", [2020, 2021])
def test_statistics_as_of_any_day_are_what_a_recount_of_the_facts_by_then_gives(
    loaded: ProjectionView, year: int
) -> None:
    # The history runs from 20 December 2020 into February 2021.
    days = [date(2020, 12, 1) + timedelta(days=n) for n in range(0, 100, 3)]
    for day in days:
        until = fact_day_end(day)
        assert counted_as_of(loaded, year, until) == recount(loaded, year, until), day
    assert counted_as_of(loaded, year, fact_day_end(days[-1]))[0], "the history has figures"


@pytest.mark.parametrize("figure", FIGURES)
def test_every_figure_drills_down_to_as_many_items_as_it_counts(
    loaded: ProjectionView, figure: str
) -> None:
    for year, office, as_of in itertools.product(
        (2020, 2021), ("yanji", "tumen", None), (None, date(2021, 1, 3))
    ):
        offices = OFFICES if office is None else [office]
        answer = statistics(loaded, year, offices, office is None, as_of)["total"]
        total, items = drill_down(
            loaded, figure, year, None if office is None else [office], as_of, None, 10_000, 0
        )
        assert len(items) == total
        assert all(item["event_ids"] for item in items)
        if figure == "meetings_held":
            assert total == sum(answer["meetings_held"].values())
        elif figure == "member_participations":
            assert sum(item["members"] for item in items) == answer[figure]
        elif figure == "median_days_to_resolution":
            days = sorted(item["days_to_resolution"] for item in items)
            expected = (days[(len(days) - 1) // 2] + days[len(days) // 2]) / 2 if days else None
            assert answer[figure] == expected
        else:
            assert total == answer[figure], (year, office, as_of)


def test_statistics_as_of_the_end_of_the_year_equal_the_year_once_it_is_over(
    loaded: ProjectionView,
) -> None:
    # Every event of the history happens by the end of February 2021.
    assert statistics(loaded, 2020, OFFICES, True, date(2021, 12, 31)) == {
        **statistics(loaded, 2020, OFFICES, True, None),
        "as_of": "2021-12-31",
    }
    early = statistics(loaded, 2021, OFFICES, True, date(2021, 1, 1))["total"]
    late = statistics(loaded, 2021, OFFICES, True, None)["total"]
    assert early["issues_collected"] < late["issues_collected"]
