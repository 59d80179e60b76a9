"""Deadlines in Chinese working days: public holidays off, weekend make-up days (调休) on.

The expected dates are the State Council's notices for 2020 and 2024, read by hand: the 2020
Spring Festival ran 24 Jan – 2 Feb (extended for the epidemic) with Sunday 19 Jan worked;
National Day and Mid-Autumn 2020 ran 1–8 Oct with Sunday 27 Sep and Saturday 10 Oct worked;
the 2024 Spring Festival ran 10–17 Feb with Sundays 4 Feb and 18 Feb worked; National Day
2024 ran 1–7 Oct with Sunday 29 Sep and Saturday 12 Oct worked.
"""

from __future__ import annotations

from datetime import date

import pytest

from shared.clock import (
    COVERED_YEARS,
    CalendarNotCovered,
    add_working_days,
    is_working_day,
    working_days,
    working_days_between,
)


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [
        (date(2020, 1, 17), 1, date(2020, 1, 19)),  # Friday → the make-up Sunday
        (date(2020, 1, 17), 2, date(2020, 1, 20)),
        (date(2020, 1, 23), 1, date(2020, 2, 3)),  # over the whole extended holiday
        (date(2020, 9, 25), 1, date(2020, 9, 27)),  # Friday → the make-up Sunday
        (date(2020, 9, 25), 4, date(2020, 9, 30)),
        (date(2020, 9, 25), 5, date(2020, 10, 9)),  # 1–8 Oct off
        (date(2020, 9, 25), 6, date(2020, 10, 10)),  # the make-up Saturday
        (date(2020, 9, 25), 7, date(2020, 10, 12)),
        (date(2024, 2, 2), 1, date(2024, 2, 4)),  # Friday → the make-up Sunday
        (date(2024, 2, 8), 1, date(2024, 2, 9)),  # New Year's Eve was a working day
        (date(2024, 2, 8), 2, date(2024, 2, 18)),  # 10–17 Feb off, Sunday 18 Feb worked
        (date(2024, 2, 8), 3, date(2024, 2, 19)),
        (date(2024, 9, 27), 1, date(2024, 9, 29)),  # the make-up Sunday
        (date(2024, 9, 27), 3, date(2024, 10, 8)),  # 1–7 Oct off
        (date(2024, 9, 27), 7, date(2024, 10, 12)),  # the make-up Saturday
        (date(2024, 9, 27), 8, date(2024, 10, 14)),
    ],
)
def test_counts_working_days_across_holidays_and_make_up_days(
    start: date, count: int, expected: date
) -> None:
    assert add_working_days(start, count) == expected


def test_counts_backwards_over_a_holiday() -> None:
    assert add_working_days(date(2020, 10, 12), -3) == date(2020, 9, 30)
    assert add_working_days(date(2024, 2, 19), -2) == date(2024, 2, 9)


def test_a_make_up_weekend_day_is_a_working_day_and_a_weekday_holiday_is_not() -> None:
    assert is_working_day(date(2020, 10, 10))  # Saturday
    assert not is_working_day(date(2020, 10, 5))  # Monday
    assert not is_working_day(date(2024, 2, 12))  # Monday of the Spring Festival
    assert is_working_day(date(2024, 2, 18))  # Sunday


def test_the_package_covers_2004_to_2026() -> None:
    assert (COVERED_YEARS.start, COVERED_YEARS.stop - 1) == (2004, 2026)


def test_a_count_into_an_uncovered_year_is_refused_with_a_clear_reason() -> None:
    with pytest.raises(CalendarNotCovered) as refused:
        add_working_days(date(2026, 12, 28), 10)
    assert refused.value.day.year == 2027
    assert "2027" in str(refused.value) and "does not cover" in str(refused.value)


def test_an_uncovered_year_is_approximated_by_weekdays_only_when_asked() -> None:
    # 2027-01-01 is a Friday, the next Monday the 4th.
    assert add_working_days(date(2026, 12, 31), 2, approximate=True) == date(2027, 1, 4)


def test_counts_the_working_days_between_two_days_either_way() -> None:
    assert working_days_between(date(2020, 9, 25), date(2020, 10, 9)) == 5
    assert working_days_between(date(2020, 10, 9), date(2020, 9, 25)) == -5
    assert working_days_between(date(2020, 10, 3), date(2020, 10, 3)) == 0


def test_the_count_between_undoes_adding_working_days() -> None:
    for count in (1, 5, 7, -3):
        start = date(2020, 9, 25) if count > 0 else date(2020, 10, 12)
        assert working_days_between(start, add_working_days(start, count)) == count


def test_lists_the_working_days_of_a_span_with_both_ends() -> None:
    assert working_days(date(2020, 9, 26), date(2020, 10, 10)) == [
        date(2020, 9, 27),
        date(2020, 9, 28),
        date(2020, 9, 29),
        date(2020, 9, 30),
        date(2020, 10, 9),
        date(2020, 10, 10),
    ]
    assert working_days(date(2020, 10, 9), date(2020, 10, 9)) == [date(2020, 10, 9)]
    assert working_days(date(2020, 10, 2), date(2020, 10, 1)) == []


def test_spans_beyond_the_calendar_are_refused() -> None:
    with pytest.raises(CalendarNotCovered):
        working_days_between(date(2026, 12, 1), date(2027, 1, 5))
    with pytest.raises(CalendarNotCovered):
        working_days(date(2003, 12, 1), date(2004, 1, 5))
