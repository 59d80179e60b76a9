"""What every service's HTTP side shares (shared/web.py): times and text in request bodies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import Field, ValidationError

from shared.clock import CHINA
from shared.web import ChinaTime, IsoDate, RequestBody, request_time, text_problem


def test_a_time_without_an_offset_is_china_standard_time() -> None:
    assert request_time(datetime(2020, 6, 4, 15, 30)) == datetime(2020, 6, 4, 15, 30, tzinfo=CHINA)
    utc = datetime(2020, 6, 4, 7, 30, tzinfo=UTC)
    assert request_time(utc) is utc


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
        request_time(moment)


def test_the_first_and_last_moments_are_taken() -> None:
    assert request_time(datetime(1949, 1, 1)).year == 1949
    assert request_time(datetime(2099, 12, 31, 23, 59, 59)).year == 2099


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("\udc80", "U+DC80"),
        ("路灯\x00不亮", "U+0000"),
        ("\x1b[31m", "U+001B"),
        ("\x85", "U+0085"),
        ("\u202e灯路", "U+202E"),
        ("\u2066x\u2069", "U+2066"),
        ("a\u200bb", "U+200B"),
        ("\ufeff标题", "U+FEFF"),
    ],
)
def test_surrogates_controls_and_invisible_format_characters_are_refused(
    text: str, named: str
) -> None:
    assert named in (text_problem(text) or "")


@pytest.mark.parametrize("text", ["路灯不亮", "第一行\n\t第二行\r\n", "💡👨‍👩‍👧🏴󠁧󠁢󠁳󠁣󠁴󠁿❤️", "Ａｂｃ · ①"])
def test_emoji_tabs_and_line_breaks_are_plain_text(text: str) -> None:
    assert text_problem(text) is None


class Example(RequestBody):
    title: str
    members: list[str] = Field(default_factory=list)
    at: ChinaTime | None = None
    deadline: IsoDate | None = None


def test_a_body_names_the_field_that_holds_bad_text() -> None:
    with pytest.raises(ValidationError) as refused:
        Example.model_validate({"title": "ok", "members": ["张三", "李\u202e四"]})
    assert refused.value.errors()[0]["loc"] == ("members",)


@pytest.mark.parametrize("value", [123, -1, 0.5, True, "123", "1591255800"])
def test_a_number_is_not_a_time_or_a_date(value: object) -> None:
    for field in ("at", "deadline"):
        with pytest.raises(ValidationError, match="ISO 8601"):
            Example.model_validate({"title": "t", field: value})


def test_iso_times_and_dates_are_read() -> None:
    body = Example.model_validate(
        {"title": "t", "at": "2020-06-04T15:30:00", "deadline": "2020-09-30"}
    )
    assert body.at == datetime(2020, 6, 4, 15, 30, tzinfo=CHINA)
    assert body.deadline == date(2020, 9, 30)
