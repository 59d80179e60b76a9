"""China's clock and calendar (中国时间 / 工作日): the zone, China's days, and working days.

Every office works on China Standard Time (Asia/Shanghai): a day, a year, a deadline are
China's whatever zone a moment was written in. Working days (工作日) are the official ones:
public holidays off, weekend make-up days (调休) on, from the `chinesecalendar` package,
which the State Council's yearly notice fills in; it knows only the years it was released
for (1.11.0: 2004–2026). Counting into a year it does not know is refused with
`CalendarNotCovered`, never guessed, except where a caller explicitly asks for the weekday
approximation (reminders and ladders, which must not stop for a deadline in a year the
package does not know yet).
"""

from __future__ import annotations

import bisect
import functools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
from chinese_calendar import constants

CHINA = ZoneInfo("Asia/Shanghai")
"""China Standard Time (中国标准时间), the zone of every office."""

COVERED_YEARS = range(
    min(d.year for d in constants.holidays), max(d.year for d in constants.holidays) + 1
)
"""The years the installed package knows the official calendar of."""


def china_time(moment: datetime) -> datetime:
    """A moment on China's clock (北京时间): the same instant, read in Asia/Shanghai."""
    return moment.astimezone(CHINA)


def china_day(moment: datetime) -> date:
    """The calendar day of a moment in China Standard Time (中国日期)."""
    return moment.astimezone(CHINA).date()


def start_of_day(day: date) -> datetime:
    """The start of a day in China (当日零时): 00:00 Asia/Shanghai."""
    return datetime.combine(day, time(0), CHINA)


def end_of_day(day: date) -> datetime:
    """The end of a day in China (当日截止), e.g. of a deadline day: the next day at 00:00
    Asia/Shanghai, so a moment is within the day when it is before this."""
    return start_of_day(day + timedelta(days=1))


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
    """Whether offices work that day (工作日); `approximate` treats unknown years as
    Monday–Friday."""
    if day.year not in COVERED_YEARS:
        if approximate:
            return day.weekday() < 5
        raise CalendarNotCovered(day)
    return bool(chinese_calendar.is_workday(day))


def add_working_days(start: date, count: int, approximate: bool = False) -> date:
    """The `count`-th working day (工作日) after `start` (start itself not counted); a negative
    count goes back, so `add_working_days(deadline, -3)` is three working days before it."""
    step = timedelta(days=1 if count >= 0 else -1)
    day = start
    remaining = abs(count)
    while remaining:
        day += step
        if is_working_day(day, approximate):
            remaining -= 1
    return day


@functools.cache
def _working_ordinals() -> list[int]:
    # Built once: asking the calendar day by day took ~0.4 s for one case years overdue.
    first, last = date(COVERED_YEARS.start, 1, 1), date(COVERED_YEARS.stop - 1, 12, 31)
    return [
        day.toordinal()
        for n in range((last - first).days + 1)
        if chinese_calendar.is_workday(day := first + timedelta(days=n))
    ]


def _check_covered(*days: date) -> None:
    for day in days:
        if day.year not in COVERED_YEARS:
            raise CalendarNotCovered(day)


def working_days_between(start: date, end: date) -> int:
    """How many working days (工作日) follow `start` up to `end` inclusive, e.g. those left
    until a deadline; when `end` is before `start`, minus those after `end` up to `start`."""
    _check_covered(start, end)
    days = _working_ordinals()
    low, high = sorted((start.toordinal(), end.toordinal()))
    between = bisect.bisect_right(days, high) - bisect.bisect_right(days, low)
    return between if end >= start else -between


def working_days(start: date, end: date) -> list[date]:
    """The working days (工作日) from `start` to `end`, both included, in order."""
    _check_covered(start, end)
    days = _working_ordinals()
    first = bisect.bisect_left(days, start.toordinal())
    after = bisect.bisect_right(days, end.toordinal())
    return [date.fromordinal(d) for d in days[first:after]]
