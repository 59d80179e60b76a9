"""Calendar feeds (会议日历): an office's or a person's meetings as iCalendar (RFC 5545).

A calendar app subscribes to the URL and polls it; each meeting keeps one UID, a postponement
moves it and bumps SEQUENCE, a cancellation shows it as STATUS:CANCELLED.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from icalendar import Calendar, Event, vText

from services.meetings.domain import KIND_NAMES, Meeting
from services.meetings.rules import SHANGHAI

PRODUCT = "-//Shangliang//有事来商量 协商会议//ZH"


def feed(name: str, meetings: Iterable[Meeting]) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    # Typed as TEXT so that a line break in it (a person id may hold one) is escaped.
    calendar.add("x-wr-calname", vText(name))
    calendar.add("x-wr-timezone", "Asia/Shanghai")
    for meeting in meetings:
        calendar.add_component(_event(meeting))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _event(meeting: Meeting) -> Event:
    entry = Event()
    entry.add("uid", f"{meeting.id}@shangliang")
    entry.add("dtstamp", meeting.modified_on.astimezone(UTC))
    entry.add("last-modified", meeting.modified_on.astimezone(UTC))
    entry.add("sequence", meeting.sequence)
    entry.add("dtstart", meeting.starts_at.astimezone(SHANGHAI))
    entry.add("dtend", meeting.ends_at.astimezone(SHANGHAI))
    entry.add("summary", f"【{KIND_NAMES[meeting.kind]}】{meeting.title}")
    entry.add("description", _description(meeting))
    entry.add("categories", [KIND_NAMES[meeting.kind]])
    entry.add("status", "CANCELLED" if meeting.status == "cancelled" else "CONFIRMED")
    if meeting.venue is not None:
        entry.add("location", meeting.venue)
    return entry


def _description(meeting: Meeting) -> str:
    lines = [f"协商主题 / theme: {meeting.theme}"]
    if len(meeting.offices) > 1:
        lines.append(f"联合举办 / jointly held by: {', '.join(meeting.offices)}")
    if meeting.submission_deadline is not None:
        deadline: datetime = meeting.submission_deadline.astimezone(SHANGHAI)
        lines.append(f"书面意见截止 / opinions due: {deadline:%Y-%m-%d %H:%M}")
    for topic in meeting.topics.values():
        lines.append(f"议题 / topic: {topic['title']}")
    if meeting.postponements:
        lines.append(f"已延期 / postponed: {meeting.postponements[-1]['reason']}")
    if meeting.cancel_reason is not None:
        lines.append(f"已取消 / cancelled: {meeting.cancel_reason}")
    return "\n".join(lines)
