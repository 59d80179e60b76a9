"""Which events and days make which notifications (services/notifications/domain.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from services.notifications.domain import (
    CaseFacts,
    IssueFacts,
    QuietHours,
    digests_due,
    notices_for,
    reminders_due,
)
from shared.clock import CHINA
from shared.contracts import CaseEscalatedV1, CaseVerifiedV1, IssueSubmittedV1

CASE = CaseFacts("c1", "yanji", "住建局", date(2020, 10, 12), "延吉政协督〔2020〕3号", False, False)


def kinds_on(day: date, case: CaseFacts = CASE) -> list[str]:
    return [n.kind for n in reminders_due([case], day, 3)]


def test_reminds_from_three_working_days_before_the_deadline_and_on_the_day() -> None:
    # 2020-10-12 is a Monday after the National Day holiday (10-01 to 10-08), and Saturday
    # 10-10 was a make-up working day: three working days before is 09-30, not 10-07.
    assert kinds_on(date(2020, 9, 29)) == []
    assert kinds_on(date(2020, 9, 30)) == ["deadline_reminder"]
    assert kinds_on(date(2020, 10, 11)) == ["deadline_reminder"]
    assert kinds_on(date(2020, 10, 12)) == ["deadline_today"]
    assert kinds_on(date(2020, 10, 13)) == []


def test_a_reminder_has_one_id_whichever_day_it_is_made_on() -> None:
    first = reminders_due([CASE], date(2020, 9, 30), 3)
    again = reminders_due([CASE], date(2020, 10, 9), 3)
    assert first[0].id == again[0].id
    assert first[0].recipient == "department:yanji:住建局"
    assert first[0].subject.startswith("督办件 延吉政协督〔2020〕3号 将于 2020-10-12 到期 / Case")


def test_no_reminder_for_a_case_done_or_already_overdue() -> None:
    done = CaseFacts(**{**CASE.__dict__, "done": True})
    overdue = CaseFacts(**{**CASE.__dict__, "overdue": True})
    assert kinds_on(date(2020, 10, 12), done) == []
    assert kinds_on(date(2020, 10, 12), overdue) == []


def test_a_digest_counts_new_issues_screening_the_week_and_overdue_by_department() -> None:
    monday = date(2020, 10, 12)
    cases = [
        CASE,
        CaseFacts("c2", "yanji", "水务局", date(2020, 9, 1), None, False, True),
        CaseFacts("c3", "yanji", "水务局", date(2020, 9, 2), None, False, True),
        CaseFacts("c4", "tumen", "交通局", date(2020, 9, 2), None, False, True),
    ]
    issues = [
        IssueFacts("i1", "yanji", date(2020, 10, 11), False),
        IssueFacts("i2", "yanji", date(2020, 10, 1), True),
        IssueFacts("i3", "tumen", date(2020, 10, 9), False),
    ]
    notices = digests_due(["yanbian", "yanji", "tumen"], "yanbian", cases, issues, monday)
    by_key = {(n.kind, n.office): n for n in notices}
    yanji = by_key[("daily_digest", "yanji")]
    assert yanji.recipient == "leaders:yanji"
    assert "新收集问题（昨日 / yesterday）/ new issues: 1" in yanji.body
    assert "待筛选 / awaiting screening: 1" in yanji.body
    assert "本周到期督办件 / cases due this week: 1" in yanji.body
    assert "  水务局: 2" in yanji.body and "交通局" not in yanji.body
    weekly = by_key[("weekly_digest", "yanbian")]
    assert "new issues: 2" in weekly.body and "  交通局: 1" in weekly.body
    tuesday = digests_due(["yanji"], "yanbian", cases, issues, date(2020, 10, 13))
    assert [n.kind for n in tuesday] == ["daily_digest"]


def test_an_escalation_to_the_prefecture_also_tells_its_leaders() -> None:
    event = CaseEscalatedV1(
        case_id=uuid.uuid4(),
        office="yanji",
        department="住建局",
        step="escalate",
        to_office="yanbian",
        escalated_at=datetime(2020, 10, 20, tzinfo=UTC),
    )
    notices = notices_for("e1", event, None)
    assert [n.recipient for n in notices] == [
        "department:yanji:住建局",
        "office:yanji",
        "leaders:yanbian",
    ]
    assert notices[0].subject == "督办升级：提级督办 / Case escalation: escalated"
    assert notices_for("e1", event, None) == notices  # the same ids from the same event


def test_events_that_concern_nobody_make_no_notice() -> None:
    submitted = IssueSubmittedV1(
        issue_id=uuid.uuid4(),
        office="yanji",
        title="t",
        description="d",
        category="c",
        submitted_at=datetime(2020, 5, 1, tzinfo=UTC),
    )
    assert notices_for("e2", submitted, None) == []
    verified = CaseVerifiedV1(
        case_id=uuid.uuid4(),
        office="yanji",
        department="住建局",
        issue_ids=[],
        verified_at=datetime(2020, 5, 1, tzinfo=UTC),
    )
    assert {n.kind for n in notices_for("e3", verified, None)} == {"case_verified"}


@pytest.mark.parametrize(
    ("window", "hour", "quiet"),
    [("22:00-07:00", 23, True), ("22:00-07:00", 6, True), ("22:00-07:00", 7, False),
     ("12:00-13:30", 12, True), ("12:00-13:30", 14, False), ("", 3, False)],
)  # fmt: skip
def test_quiet_hours_are_counted_on_china_time(window: str, hour: int, quiet: bool) -> None:
    moment = datetime(2020, 6, 1, hour, 0, tzinfo=CHINA)
    assert QuietHours.parse(window).contains(moment) is quiet


def test_quiet_hours_that_are_not_a_window_are_refused() -> None:
    with pytest.raises(ValueError, match="22:00-07:00"):
        QuietHours.parse("late")


@pytest.mark.parametrize("step", ["reminder", "urge"])
def test_supervisions_reminder_and_urge_steps_leave_the_notice_to_the_scheduler(step: str) -> None:
    event = CaseEscalatedV1(
        case_id=uuid.uuid4(),
        office="yanji",
        department="住建局",
        step=step,
        to_office=None,
        escalated_at=datetime(2020, 10, 12, tzinfo=UTC),
    )
    assert notices_for("e4", event, None) == []
