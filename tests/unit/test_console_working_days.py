"""Working days left on a case (剩余工作日), as the workbench shows them: the same count as
asking the holiday calendar day by day, only fast."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest

from services.console.cases import working_days_left
from services.console.issues import working_days_since

TODAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    "deadline", ["2026-12-16", "2026-12-02", "2026-12-03", "2026-11-30", "2026-10-08", "2020-09-30"]
)
def test_working_days_left_are_the_calendars_count(deadline: str) -> None:
    due = date.fromisoformat(deadline)
    if due >= TODAY:
        expected = len(chinese_calendar.get_workdays(TODAY + timedelta(days=1), due))
    else:
        expected = -len(chinese_calendar.get_workdays(due + timedelta(days=1), TODAY))
    assert working_days_left(deadline, TODAY) == expected


def test_a_deadline_beyond_the_calendar_or_none_shows_no_count() -> None:
    assert working_days_left("2031-01-01", TODAY) is None
    assert working_days_left(None, TODAY) is None


def test_working_days_since_a_resolution_count_from_its_day_in_china() -> None:
    # Resolved late on Friday 2026-11-27 in UTC: Saturday in China, so Monday is the first.
    assert working_days_since("2026-11-27T20:00:00+00:00", TODAY) == 3
    assert working_days_since("2026-12-02T09:00:00+08:00", TODAY) == 0
    assert working_days_since("2031-01-01T09:00:00+08:00", TODAY) is None
