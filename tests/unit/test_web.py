"""What every service's HTTP side shares (shared/web.py): times in request bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.web import CHINA, china_time


def test_a_time_without_an_offset_is_china_standard_time() -> None:
    assert china_time(datetime(2020, 6, 4, 15, 30)) == datetime(2020, 6, 4, 15, 30, tzinfo=CHINA)
    utc = datetime(2020, 6, 4, 7, 30, tzinfo=UTC)
    assert china_time(utc) is utc


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=9))),
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-10))),
        datetime(1948, 12, 31, 23, 59),
        datetime(2100, 1, 1),
    ],
)
def test_a_time_outside_1949_to_2099_in_china_is_refused(moment: datetime) -> None:
    with pytest.raises(ValueError, match="1949"):
        china_time(moment)


def test_the_first_and_last_moments_are_taken() -> None:
    assert china_time(datetime(1949, 1, 1)).year == 1949
    assert china_time(datetime(2099, 12, 31, 23, 59, 59)).year == 2099
