"""The 2020 scenario: deterministic, faithful to the report, and consistent in itself.

The figures are counted here from the generated records, the way docs/API.md says the
projections count events — not read back from the generator's own bookkeeping.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import pytest

from demo.content import content
from demo.records import Issue, Scenario
from demo.scenario import generate
from shared.clock import CHINA

TARGETS = content().targets
YEAR_END = datetime(2021, 1, 1, tzinfo=CHINA)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate()


def in_2020(moment: datetime) -> bool:
    return moment.astimezone(CHINA).year == 2020


def resolutions(scenario: Scenario) -> dict[str, datetime]:
    """When each issue becomes resolved: on the spot, by a verified case, or with its original."""
    resolved: dict[str, datetime] = {}
    for issue in scenario.issues:
        if issue.screening and issue.screening.decision == "answered":
            resolved[issue.key] = issue.screening.screened_at
    for case in scenario.cases:
        verified = [s.at for s in case.steps if s.action == "verification"]
        for key in case.issues if verified else ():
            resolved[key] = min(verified[0], resolved.get(key, verified[0]))
    duplicates = [i for i in scenario.issues if i.screening and i.screening.duplicate_of]
    for issue in duplicates:
        assert issue.screening is not None and issue.screening.duplicate_of is not None
        original = resolved.get(issue.screening.duplicate_of)
        if original is not None:
            resolved[issue.key] = max(original, issue.screening.screened_at)
    return resolved


def test_the_same_seed_gives_the_same_scenario_byte_for_byte() -> None:
    assert generate(7).to_json() == generate(7).to_json()
    assert generate(7).to_json() != generate(8).to_json()


@pytest.mark.parametrize("seed", [0, 1, 99, 2020, 123456])
def test_every_seed_reproduces_the_reports_figures_counted_from_the_records(seed: int) -> None:
    scenario = generate(seed)
    activities = [a for a in scenario.activities if in_2020(a.held_at)]
    participations = sum(
        len(a.corrections[-1].members if a.corrections else a.members) for a in activities
    )
    resolved = {k for k, moment in resolutions(scenario).items() if in_2020(moment)}
    by_key = {i.key: i for i in scenario.issues}
    held = Counter(
        m.kind
        for m in scenario.meetings
        if m.cancellation is None
        and (moment := m.closed_at if m.kind == "written" else m.held_at) is not None
        and in_2020(moment)
    )
    counted = {
        "outreach_activities": len(activities),
        "member_participations": participations,
        "issues_collected": sum(in_2020(i.submitted_at) for i in scenario.issues),
        "issues_resolved": len(resolved),
        "thematic": held["thematic"],
        "onsite": held["onsite"],
        "written": held["written"],
        "key_problems_resolved": sum(by_key[k].key_problem for k in resolved),
    }
    assert counted == TARGETS
    assert {k: getattr(scenario.expected, k) for k in TARGETS} == counted


def test_the_exact_numbers_fit_the_reports_words() -> None:
    """23 期, 1100 余人次, 300 余个, 120 余件, 2/1/2 期, 18 个."""
    assert TARGETS["outreach_activities"] == 23
    assert 1100 < TARGETS["member_participations"] < 1200
    assert 300 < TARGETS["issues_collected"] < 400
    assert 120 < TARGETS["issues_resolved"] < 130
    assert (TARGETS["thematic"], TARGETS["onsite"], TARGETS["written"]) == (2, 1, 2)
    assert TARGETS["key_problems_resolved"] == 18


def test_the_other_figures_are_counted_from_the_records_and_are_not_zero(
    scenario: Scenario,
) -> None:
    reports = sum(
        1
        for i in scenario.issues
        if i.screening and i.screening.decision == "report" and in_2020(i.screening.screened_at)
    )
    letters = sum(s.action == "letters" and in_2020(s.at) for c in scenario.cases for s in c.steps)
    overdue = [
        c
        for c in scenario.cases
        if c.deadline.year == 2020 and not any(s.action == "completion" for s in c.steps)
    ]
    assert reports == scenario.expected.reports_forwarded > 0
    assert letters == scenario.expected.letters_issued > 0
    assert len(overdue) == scenario.expected.cases_overdue > 0
    assert {c.origin for c in overdue} == {"referral", "outcome"}


def test_an_issue_just_after_new_year_in_china_counts_in_2021_though_utc_says_2020(
    scenario: Scenario,
) -> None:
    late = [i for i in scenario.issues if not in_2020(i.submitted_at)]
    assert len(late) == 1
    assert late[0].submitted_at.astimezone(UTC).year == 2020


def test_places_groups_and_stations_are_the_pilots(scenario: Scenario) -> None:
    communities = [name for name, _ in scenario.communities]
    assert len(set(communities)) == len(communities) == 70
    assert len(scenario.liaison_stations) == len(set(scenario.liaison_stations)) == 12
    assert len(scenario.activity_groups) == 141
    assert {g.community for g in scenario.activity_groups} == set(communities)
    assert {"进学街道", "河南街道", "新兴街道", "公园街道", "北山街道", "建工街道"} <= {
        area for _, area in scenario.communities
    }
    assert "丹山社区" in communities
    names = [m.name for m in scenario.members]
    assert len(set(names)) == len(names)
    assert all(member in names for g in scenario.activity_groups for member in g.members)


def test_activities_are_thursday_afternoons_from_june_on_working_days(scenario: Scenario) -> None:
    for activity in scenario.activities:
        held = activity.held_at.astimezone(CHINA)
        assert held.weekday() == 3, activity
        assert date(2020, 6, 1) <= held.date() <= date(2020, 12, 31)
        assert 13 <= held.hour <= 17
        assert not chinese_calendar.is_holiday(held.date())
        assert activity.community in dict(scenario.communities)
        assert activity.liaison_station in scenario.liaison_stations
        assert activity.activity_group in {g.name for g in scenario.activity_groups}
        final = activity.corrections[-1].members if activity.corrections else activity.members
        assert len(set(final)) == len(final)
        assert set(final) <= {m.name for m in scenario.members}
        assert all(c.corrected_at > activity.held_at for c in activity.corrections)
    held_days = [a.held_at.date() for a in scenario.activities]
    assert len(set(held_days)) == len(held_days) == 23
    assert min(held_days) == date(2020, 6, 4)
    assert Counter(a.office for a in scenario.activities).keys() == {"yanbian", "yanji"}
    assert 1 <= sum(bool(a.corrections) for a in scenario.activities) <= 2


def test_every_issue_names_what_exists_and_reads_as_chinese(scenario: Scenario) -> None:
    activities = {a.key: a for a in scenario.activities}
    issues = {i.key: i for i in scenario.issues}
    for issue in scenario.issues:
        assert issue.office in ("yanbian", "yanji")
        assert issue.category in content().categories
        assert all("\u4e00" <= c <= "\u9fff" for c in issue.title[:2]), issue.title
        assert issue.description.endswith("。")
        if issue.activity is not None:
            activity = activities[issue.activity]
            assert issue.source == "outreach"
            assert issue.office == activity.office
            assert issue.submitted_at.date() == activity.held_at.date()
            assert issue.submitted_at > activity.held_at
            assert issue.recorded_by in (activity.corrections or [activity])[-1].members
        else:
            assert issue.source != "outreach"
        if issue.reporter_phone is not None:
            assert len(issue.reporter_phone) == 11 and issue.reporter_phone.isdigit()
        screening = issue.screening
        if screening is None:
            continue
        if screening.decision == "refer":
            assert screening.department in scenario.departments
            assert screening.deadline is not None
        if screening.decision == "duplicate":
            original = issues[screening.duplicate_of or ""]
            assert original.office == issue.office
            assert original.screening is not None
            assert original.screening.screened_at < screening.screened_at
        if screening.decision == "report":
            assert screening.report_title and "《" not in screening.report_title
        if screening.decision == "rejected":
            assert screening.reason
        if screening.decision == "answered":
            assert screening.answer
    decisions = Counter(i.screening.decision if i.screening else None for i in scenario.issues)
    assert set(decisions) == {
        "topic",
        "report",
        "refer",
        "answered",
        "duplicate",
        "rejected",
        None,
    }
    assert sum(i.closed_at is not None for i in scenario.issues) > 0


def test_cases_cover_each_referral_and_each_outcome_once(scenario: Scenario) -> None:
    issues = {i.key: i for i in scenario.issues}
    referred = [i.key for i in scenario.issues if i.screening and i.screening.decision == "refer"]
    referral_cases = [c for c in scenario.cases if c.origin == "referral"]
    assert sorted(k for c in referral_cases for k in c.issues) == sorted(referred)
    for case in referral_cases:
        screening = issues[case.issues[0]].screening
        assert screening is not None
        assert (case.department, case.deadline) == (screening.department, screening.deadline)
    outcomes = [(m.key, n, o) for m in scenario.meetings for n, o in enumerate(m.outcomes)]
    outcome_cases = {(c.meeting, c.outcome): c for c in scenario.cases if c.origin == "outcome"}
    assert len(outcome_cases) == len(outcomes)
    for meeting, n, outcome in outcomes:
        case = outcome_cases[(meeting, n)]
        assert case.issues == outcome.issues
        assert (case.department, case.deadline) == (outcome.department, outcome.deadline)
    assert all(c.department in scenario.departments for c in scenario.cases)


def test_meetings_are_held_from_march_with_topics_screened_before_them(scenario: Scenario) -> None:
    issues = {i.key: i for i in scenario.issues}
    people = {(p.office, p.person_id): p for p in scenario.people}
    on_agenda = [k for m in scenario.meetings for k in m.topics]
    topics = [i.key for i in scenario.issues if i.screening and i.screening.decision == "topic"]
    assert sorted(on_agenda) == sorted(topics)
    for meeting in scenario.meetings:
        starts = meeting.postponement.starts_at if meeting.postponement else meeting.starts_at
        ends = meeting.postponement.ends_at if meeting.postponement else meeting.ends_at
        assert date(2020, 3, 1) <= meeting.planned_at.date() < starts.date()
        assert starts < ends
        assert chinese_calendar.is_workday(starts.date())
        if meeting.venue is not None:
            assert meeting.venue in dict(scenario.venues)
        if meeting.postponement:
            postponed_at = meeting.postponement.postponed_at
            assert meeting.planned_at < postponed_at < meeting.starts_at
        assert len(meeting.topics_added_at) == len(meeting.topics)
        for key, added_at in zip(meeting.topics, meeting.topics_added_at, strict=True):
            screening = issues[key].screening
            assert screening is not None and screening.screened_at < added_at < starts
            assert meeting.planned_at < added_at
            if key not in [k for o in meeting.outcomes for k in o.issues]:
                pytest.fail(f"topic {key} of {meeting.key} is in no outcome")
            assert issues[key].office in (meeting.office, *meeting.joint_offices)
        invited = {i.person_id for i in meeting.invitations}
        accepted = {i.person_id for i in meeting.invitations if i.accepted}
        assert all((meeting.office, p) in people for p in invited)
        assert set(meeting.attendance) <= accepted
        if meeting.cancellation:
            assert meeting.held_at is meeting.closed_at is None
            assert meeting.cancellation.cancelled_at < starts
            continue
        assert meeting.concluded_at is not None
        if meeting.kind == "written":
            assert meeting.submission_deadline == ends and meeting.closed_at is not None
            assert {o.person_id for o in meeting.opinions} <= accepted
            assert all(starts <= o.received_at <= ends for o in meeting.opinions)
            assert ends < meeting.closed_at < meeting.concluded_at
        else:
            assert meeting.held_at == starts and meeting.attendance
            assert starts < meeting.concluded_at
        assert all(o.deadline > meeting.concluded_at.date() for o in meeting.outcomes)


def test_meeting_windows_never_overlap_so_no_invitation_conflicts(scenario: Scenario) -> None:
    windows = sorted(
        (m.postponement.starts_at, m.postponement.ends_at)
        if m.postponement
        else (m.starts_at, m.ends_at)
        for m in scenario.meetings
    )
    assert all(a[1] < b[0] for a, b in itertools.pairwise(windows))


def test_there_is_a_joint_meeting_of_the_prefecture_and_the_city(scenario: Scenario) -> None:
    issues = {i.key: i for i in scenario.issues}
    joint = [m for m in scenario.meetings if m.joint_offices]
    assert [(m.office, m.joint_offices) for m in joint] == [("yanbian", ("yanji",))]
    assert {issues[k].office for k in joint[0].topics} == {"yanbian", "yanji"}


def test_case_steps_follow_each_other_and_end_by_the_end_of_2020(scenario: Scenario) -> None:
    issues = {i.key: i for i in scenario.issues}
    meetings = {m.key: m for m in scenario.meetings}
    fates = Counter()
    for case in scenario.cases:
        if case.origin == "referral":
            screening = issues[case.issues[0]].screening
            assert screening is not None
            opened = screening.screened_at
        else:
            concluded = meetings[case.meeting or ""].concluded_at
            assert concluded is not None
            opened = concluded
        times = [opened, *(s.at for s in case.steps)]
        assert times == sorted(times) and len(set(times)) == len(times), case.key
        assert all(s.at < YEAR_END for s in case.steps)
        actions = [s.action for s in case.steps]
        if actions:
            assert actions[0] == "letters"
            assert case.steps[0].body["deadline"] == case.deadline
            assert case.steps[0].body["requirements"]
        if case.verified:
            fates["verified"] += 1
            assert actions[-2:] == ["completion", "verification"]
            completed = [s.at.date() for s in case.steps if s.action == "completion"]
            assert completed[0] <= case.deadline
            assert "acknowledgement" in actions
        elif case.deadline.year == 2020:
            fates["overdue"] += 1
            assert "completion" not in actions
        else:
            fates["open"] += 1
            assert "completion" not in actions and "verification" not in actions
        for step in case.steps:
            if step.action == "follow-ups":
                assert step.body["kind"] in ("research", "inspection", "symposium")
                assert set(step.body["members"]) <= {m.name for m in scenario.members}
            if step.action == "send-back":
                assert step.body["deadline"] > step.at.date()
    assert min(fates.values()) > 0
    assert sum("send-back" in [s.action for s in c.steps] for c in scenario.cases) == 1


def test_screening_follows_submission_and_nothing_is_dated_after_2020_but_the_late_call(
    scenario: Scenario,
) -> None:
    late: list[Issue] = []
    for issue in scenario.issues:
        assert issue.submitted_at.tzinfo is not None
        assert issue.submitted_at >= datetime(2020, 3, 1, tzinfo=CHINA)
        if issue.submitted_at >= YEAR_END:
            late.append(issue)
        if issue.screening:
            assert issue.submitted_at < issue.screening.screened_at < YEAR_END
            assert issue.screening.screened_at - issue.submitted_at < timedelta(days=30)
        if issue.closed_at:
            assert issue.screening and issue.screening.screened_at < issue.closed_at < YEAR_END
    assert [i.screening for i in late] == [None]
