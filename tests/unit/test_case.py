"""The supervision case (督办件): every transition, every refusal, the deadline ladder."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import uuid4

import pytest

from services.supervision.domain import (
    CaseRuleBroken,
    IllegalTransition,
    Ladder,
    LetterRegister,
    SupervisionCase,
    case_id_for_outcome,
    case_id_for_referral,
    letter_number,
)
from shared.clock import CHINA

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=CHINA)
LADDER = Ladder(reminder_working_days=3, escalate_after_working_days=5, escalate_to="yanbian")


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=CHINA)


def opened(deadline: date = date(2020, 9, 30), office: str = "yanji") -> SupervisionCase:
    issue_ids = [uuid4(), uuid4()]
    return SupervisionCase(
        id=case_id_for_outcome(uuid4()),
        office=office,
        origin="outcome",
        meeting_id=uuid4(),
        outcome_id=uuid4(),
        issue_ids=issue_ids,
        department="延吉市住房和城乡建设局",
        deadline=deadline,
        requirements="尽快修复小区路灯",
        opened_at=at("2020-06-30"),
    )


def with_letter(deadline: date = date(2020, 9, 30), issued: str = "2020-07-02") -> SupervisionCase:
    case = opened()
    case.issue_letter(
        letter_number("延市政协督", 2020, 3), 2020, 3, deadline, "限期修复", at(issued), NOW
    )
    return case


def acknowledged() -> SupervisionCase:
    case = with_letter()
    case.acknowledge(at("2020-07-03"), NOW)
    return case


def completed(on: str = "2020-09-20") -> SupervisionCase:
    case = acknowledged()
    case.report_completion("路灯已全部修复", at(on), NOW)
    return case


def event_names(case: SupervisionCase) -> list[str]:
    return [type(e).__name__ for e in case.collect_events()]


def test_a_case_opens_with_the_outcomes_deadline_and_requirements() -> None:
    case = opened()
    assert (case.status, case.deadline, case.requirements) == (
        "opened",
        date(2020, 9, 30),
        "尽快修复小区路灯",
    )
    assert not case.overdue
    assert event_names(case) == ["Opened"]


def test_the_same_outcome_or_screening_event_always_gives_the_same_case_id() -> None:
    outcome, issue = uuid4(), uuid4()
    assert case_id_for_outcome(outcome) == case_id_for_outcome(outcome)
    assert case_id_for_referral(issue, "e1") == case_id_for_referral(issue, "e1")
    assert case_id_for_referral(issue, "e1") != case_id_for_referral(issue, "e2")


def test_issuing_a_letter_sets_its_deadline_and_number() -> None:
    case = with_letter(deadline=date(2020, 10, 9))
    assert case.status == "letter_issued"
    assert case.deadline == date(2020, 10, 9)
    assert case.letters[0].number == "延市政协督〔2020〕3号"
    assert event_names(case) == ["Opened", "LetterIssued"]


def test_a_letter_with_a_deadline_before_its_date_is_refused_naming_the_field() -> None:
    case = opened()
    with pytest.raises(CaseRuleBroken) as refused:
        case.check_letter(date(2020, 7, 1), "限期修复", at("2020-07-02"), NOW)
    assert refused.value.field == "deadline"
    assert "截止日期早于发函日期 / the deadline is before the letter" in refused.value.reason
    assert case.status == "opened"


@pytest.mark.parametrize(
    ("requirements", "issued_at", "field"),
    [
        ("  ", at("2020-07-02"), "requirements"),
        ("限期修复", NOW + timedelta(hours=1), "issued_at"),
        ("限期修复", at("2020-06-29"), "issued_at"),
    ],
    ids=["blank requirements", "a letter in the future", "a letter before the case"],
)
def test_a_bad_letter_is_refused(requirements: str, issued_at: datetime, field: str) -> None:
    with pytest.raises(CaseRuleBroken) as refused:
        opened().check_letter(date(2020, 9, 30), requirements, issued_at, NOW)
    assert refused.value.field == field


def test_the_department_acknowledges_reports_progress_and_completion() -> None:
    case = acknowledged()
    assert case.status == "acknowledged"
    case.report_progress("已排查线路", at("2020-07-10"), NOW)
    case.report_progress("已更换灯具一半", at("2020-08-10"), NOW)
    assert case.status == "in_progress"
    assert [r.note for r in case.progress] == ["已排查线路", "已更换灯具一半"]
    case.report_completion("路灯已全部修复", at("2020-09-20"), NOW)
    assert case.status == "completed"
    assert event_names(case)[-4:] == [
        "Acknowledged",
        "ProgressReported",
        "ProgressReported",
        "CompletionReported",
    ]


def test_follow_ups_of_each_kind_are_recorded_with_the_members() -> None:
    case = acknowledged()
    for kind in ("research", "inspection", "symposium"):
        case.record_follow_up(kind, at("2020-08-06", 14), ["金委员", " 李委员 "], "现场查看", NOW)
    assert [f.kind for f in case.follow_ups] == ["research", "inspection", "symposium"]
    assert case.follow_ups[0].members == ("金委员", "李委员")
    assert case.status == "acknowledged"  # a follow-up runs beside the department's work


@pytest.mark.parametrize(
    ("kind", "members", "field"),
    [("picnic", ["金委员"], "kind"), ("research", [" "], "members")],
    ids=["an unknown kind", "no member"],
)
def test_a_bad_follow_up_is_refused(kind: str, members: list[str], field: str) -> None:
    with pytest.raises(CaseRuleBroken) as refused:
        acknowledged().record_follow_up(kind, at("2020-08-06"), members, "", NOW)
    assert refused.value.field == field


def test_the_office_verifies_a_completed_case_naming_its_issues() -> None:
    case = completed()
    case.verify(at("2020-09-25"), NOW)
    assert case.status == "verified"
    verified = case.collect_events()[-1]
    assert type(verified).__name__ == "Verified"
    assert verified.issue_ids == case.issue_ids  # type: ignore[attr-defined]


def test_a_sent_back_case_has_a_new_deadline_and_goes_back_to_work() -> None:
    case = completed()
    case.send_back("部分路段仍不亮", date(2020, 10, 30), at("2020-09-25"), NOW)
    assert (case.status, case.deadline, case.completion) == ("reopened", date(2020, 10, 30), None)
    case.report_progress("补修剩余路段", at("2020-10-12"), NOW)
    assert case.status == "in_progress"
    case.report_completion("全部修复", at("2020-10-20"), NOW)
    case.verify(at("2020-10-22"), NOW)
    assert case.status == "verified"


def test_a_send_back_with_a_deadline_before_it_is_refused() -> None:
    case = completed()
    with pytest.raises(CaseRuleBroken) as refused:
        case.send_back("部分路段仍不亮", date(2020, 9, 24), at("2020-09-25"), NOW)
    assert refused.value.field == "deadline"
    assert case.status == "completed"


@pytest.mark.parametrize(
    ("make", "command", "state"),
    [
        (opened, lambda c: c.acknowledge(at("2020-07-03"), NOW), "opened"),
        (with_letter, lambda c: c.report_progress("x", at("2020-07-03"), NOW), "letter_issued"),
        (acknowledged, lambda c: c.verify(at("2020-07-05"), NOW), "acknowledged"),
        (
            acknowledged,
            lambda c: c.send_back("x", date(2020, 9, 1), at("2020-07-05"), NOW),
            "acknowledged",
        ),
        (completed, lambda c: c.acknowledge(at("2020-09-21"), NOW), "completed"),
        (
            completed,
            lambda c: c.check_letter(date(2020, 12, 1), "x", at("2020-09-21"), NOW),
            "completed",
        ),
        (
            opened,
            lambda c: c.record_follow_up("research", at("2020-07-01"), ["金委员"], "", NOW),
            "opened",
        ),
    ],
    ids=[
        "acknowledging before a letter",
        "progress before acknowledgement",
        "verifying before completion",
        "sending back before completion",
        "acknowledging a completed case",
        "a second letter while the department is at work",
        "a follow-up before any letter",
    ],
)
def test_an_illegal_transition_names_the_current_state_and_changes_nothing(
    make, command, state: str
) -> None:
    case = make()
    version = case.version
    with pytest.raises(IllegalTransition) as refused:
        command(case)
    assert refused.value.status == state
    assert state in str(refused.value)
    assert case.version == version


def test_a_verified_case_takes_no_more_progress_or_follow_ups() -> None:
    case = completed()
    case.verify(at("2020-09-25"), NOW)
    with pytest.raises(IllegalTransition, match="verified"):
        case.report_progress("还在做", at("2020-09-26"), NOW)
    with pytest.raises(IllegalTransition, match="verified"):
        case.record_follow_up("inspection", at("2020-09-26"), ["金委员"], "", NOW)


def test_a_step_dated_before_the_one_it_follows_is_refused() -> None:
    case = acknowledged()
    with pytest.raises(CaseRuleBroken) as refused:
        case.report_completion("完成", at("2020-07-02", 9), NOW)
    assert refused.value.field == "reported_at"


def test_the_register_numbers_letters_one_after_another() -> None:
    register = LetterRegister(office="yanbian", year=2020)
    assert register.id == LetterRegister.create_id("yanbian", 2020)
    assert register.id != LetterRegister.create_id("yanbian", 2021)
    numbers = []
    for _ in range(3):
        register.assign(uuid4(), date(2020, 7, 1))
        numbers.append(letter_number("延州政协督", 2020, register.last_sequence))
    assert numbers == ["延州政协督〔2020〕1号", "延州政协督〔2020〕2号", "延州政协督〔2020〕3号"]


# --- the deadline ladder -----------------------------------------------------------------


def steps(case: SupervisionCase) -> list[tuple[str, datetime]]:
    found = []
    for e in case.collect_events():
        name = type(e).__name__
        if name == "BecameOverdue":
            found.append(("overdue", e.overdue_at))  # type: ignore[attr-defined]
        elif name == "Escalated":
            found.append((e.step, e.escalated_at))  # type: ignore[attr-defined]
    return found


def midnight(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=CHINA)


def test_each_step_falls_due_at_its_working_day_and_is_recorded_once() -> None:
    # Deadline Friday 9 Oct 2020, right after the National Day week.
    case = with_letter(deadline=date(2020, 10, 9))
    case.collect_events()
    case.supervise(midnight("2020-09-27") + timedelta(hours=23), LADDER)
    assert steps(case) == []
    # Three working days before 9 Oct: 30 Sep, 29 Sep, 28 Sep (1–8 Oct are holidays).
    case.supervise(midnight("2020-09-28"), LADDER)
    assert steps(case) == [("reminder", midnight("2020-09-28"))]
    case.supervise(midnight("2020-10-09") + timedelta(hours=23), LADDER)
    assert steps(case) == [("urge", midnight("2020-10-09"))]
    case.supervise(midnight("2020-10-10"), LADDER)
    assert steps(case) == [("overdue", midnight("2020-10-10"))]
    assert case.overdue
    # Five working days overdue: Sat 10 (make-up), 12, 13, 14, 15 Oct; escalated at its end.
    case.supervise(midnight("2020-10-15") + timedelta(hours=12), LADDER)
    assert steps(case) == []
    case.supervise(midnight("2020-10-16"), LADDER)
    escalated = case.collect_events()
    assert [(e.step, e.to_office, e.escalated_at) for e in escalated] == [  # type: ignore[attr-defined]
        ("escalate", "yanbian", midnight("2020-10-16"))
    ]
    case.supervise(NOW, LADDER)
    assert steps(case) == []


def test_a_back_dated_case_found_years_later_gets_every_step_at_its_due_time() -> None:
    case = with_letter(deadline=date(2020, 10, 9))
    case.collect_events()
    case.supervise(NOW, LADDER)
    assert steps(case) == [
        ("reminder", midnight("2020-09-28")),
        ("urge", midnight("2020-10-09")),
        ("overdue", midnight("2020-10-10")),
        ("escalate", midnight("2020-10-16")),
    ]


def test_a_case_completed_before_its_deadline_never_becomes_overdue() -> None:
    case = completed(on="2020-09-20")
    case.collect_events()
    case.supervise(NOW, LADDER)
    assert steps(case) == []
    assert not case.overdue


def test_a_case_completed_late_was_overdue_but_not_escalated_after_completion() -> None:
    case = completed(on="2020-10-12")
    case.collect_events()
    case.supervise(NOW, LADDER)
    # Completed on 12 Oct: after the deadline of 30 Sep, before the 5th working day overdue.
    assert [s for s, _ in steps(case)] == ["reminder", "urge", "overdue"]
    assert case.overdue


def test_the_prefectures_own_cases_are_not_escalated_above_it() -> None:
    case = opened(office="yanbian")
    case.collect_events()
    case.supervise(NOW, Ladder(escalate_to=None))
    assert [s for s, _ in steps(case)] == ["reminder", "urge", "overdue"]


def test_a_new_deadline_after_a_send_back_starts_the_ladder_again() -> None:
    case = completed(on="2020-10-12")
    case.supervise(NOW, LADDER)
    case.send_back("仍未修好", date(2020, 11, 30), at("2020-10-20"), NOW)
    assert not case.overdue
    case.collect_events()
    case.supervise(midnight("2020-12-01"), LADDER)
    assert [s for s, _ in steps(case)] == ["reminder", "urge", "overdue"]
    assert case.overdue


def test_a_case_sent_back_by_an_unsatisfied_resident_is_escalated_at_once() -> None:
    case = completed(on="2020-09-20")
    case.verify(at("2020-09-25"), NOW)
    case.collect_events()
    sent = case.reopen_after_callback(
        "居民回访不满意", date(2020, 11, 30), at("2020-10-20"), LADDER
    )
    events = case.collect_events()
    assert sent and case.status == "reopened"
    assert [type(e).__name__ for e in events] == ["Reopened", "Escalated"]
    reopened, escalated = events
    assert reopened.cause == "callback"  # type: ignore[attr-defined]
    assert (escalated.step, escalated.to_office, escalated.deadline) == (  # type: ignore[attr-defined]
        "escalate",
        "yanbian",
        date(2020, 11, 30),
    )
    assert escalated.escalated_at == at("2020-10-20")  # type: ignore[attr-defined]
    # The new deadline's ladder runs on without escalating it a second time; the escalation
    # stands (no completion was reported when it happened).
    case.supervise(midnight("2020-12-15"), LADDER)
    assert [s for s, _ in steps(case)] == ["reminder", "urge", "overdue"]
    assert case.disproved_steps() == []


def test_the_prefectures_own_case_sent_back_by_a_resident_has_nothing_to_go_up_to() -> None:
    case = opened(office="yanbian")
    case.issue_letter(
        "州政协督〔2020〕1号", 2020, 1, date(2020, 9, 30), "限期", at("2020-07-02"), NOW
    )
    case.acknowledge(at("2020-07-03"), NOW)
    case.report_completion("已修复", at("2020-09-20"), NOW)
    case.verify(at("2020-09-25"), NOW)
    case.collect_events()
    ladder = Ladder(escalate_to=None)
    assert case.reopen_after_callback("不满意", date(2020, 11, 30), at("2020-10-20"), ladder)
    assert event_names(case) == ["Reopened"]


def test_a_send_back_by_the_office_is_not_counted_as_the_residents() -> None:
    case = completed(on="2020-09-20")
    case.collect_events()
    case.send_back("仍未修好", date(2020, 11, 30), at("2020-10-20"), NOW)
    (reopened,) = case.collect_events()
    assert reopened.cause == "office"  # type: ignore[attr-defined]
