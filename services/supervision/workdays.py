"""Chinese working days (工作日): official public holidays and weekend make-up days (调休).

The calendar is the `chinesecalendar` package's, which the State Council's yearly notice
fills in; it knows only the years it was released for (1.11.0: 2004–2026). Counting into a
year it does not know is refused with `CalendarNotCovered`, never guessed, except where a
caller explicitly asks for the weekday approximation (the scheduler's reminders, which must
not stop for a deadline in a year the package does not know yet).
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
from chinese_calendar import constants

COVERED_YEARS = range(
    min(d.year for d in constants.holidays), max(d.year for d in constants.holidays) + 1
)
"""The years the installed package knows the official calendar of."""


class CalendarNotCovered(ValueError):
    """A working-day count reaches into a year the holiday calendar does not know."""

    def __init__(self, day: date) -> None:
        super().__init__(
            f"工作日日历不包含 {day.year} 年（仅 {COVERED_YEARS.start}–{COVERED_YEARS.stop - 1}）"
            f"，请直接给出截止日期 / the working-day calendar does not cover {day.year} "
            f"(only {COVERED_YEARS.start}–{COVERED_YEARS.stop - 1}); give the deadline as a date"
        )
        self.day = day


def is_working_day(day: date, approximate: bool = False) -> bool:
    """Whether offices work that day; `approximate` treats unknown years as Monday–Friday."""
    if day.year not in COVERED_YEARS:
        if approximate:
            return day.weekday() < 5
        raise CalendarNotCovered(day)
    return bool(chinese_calendar.is_workday(day))


def add_working_days(start: date, count: int, approximate: bool = False) -> date:
    """The `count`-th working day after `start` (start itself not counted); a negative
    count goes back, so `add_working_days(deadline, -3)` is three working days before it."""
    step = timedelta(days=1 if count >= 0 else -1)
    day = start
    remaining = abs(count)
    while remaining:
        day += step
        if is_working_day(day, approximate):
            remaining -= 1
    return day
