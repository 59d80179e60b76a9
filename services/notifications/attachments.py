"""What a notification carries (附件): the supervision letter (DOCX) made from the event that
issued it, and a meeting's calendar entry (iCalendar, RFC 5546) with the meeting's one UID.

The letter is built from `LetterIssuedV1` with supervision's own layout rather than fetched
from supervision's API: the event carries every field the letter prints, so a notification
needs neither a token for another service nor that service up when the event is consumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, Event

from services.notifications.domain import KIND_NAMES, MeetingFacts, china_day
from services.supervision.letters import DOCX_MEDIA_TYPE, letter_document, letter_heading
from services.supervision.settings import OFFICE_NAMES
from shared.contracts import LetterIssuedV1

PRODUCT = "-//Shangliang//有事来商量 通知//ZH"
CALENDAR_MEDIA_TYPE = "text/calendar"


@dataclass(frozen=True)
class File:
    filename: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class CaseHeading:
    """What a case was opened for, which a letter's title and opening sentence say."""

    origin: str
    subject: str
    meeting_title: str | None


def letter_file(letter: LetterIssuedV1, case: CaseHeading | None) -> File:
    """`case` None: the case's opening was never seen. It comes before the letter on the same
    stream, so only a stream that lost it leaves the letter without its heading."""
    office_name = OFFICE_NAMES.get(letter.office) or f"政协{letter.office}委员会"
    title, opening = letter_heading(
        case.origin if case else "outcome",
        case.subject if case else letter.requirements,
        case.meeting_title if case else None,
        office_name,
    )
    content = letter_document(
        office_name,
        title,
        opening,
        letter.number,
        letter.department,
        letter.requirements,
        letter.deadline,
        china_day(letter.issued_at),
    )
    return File(
        f"letter-{letter.office}-{letter.year}-{letter.sequence}.docx", DOCX_MEDIA_TYPE, content
    )


def calendar_file(meeting: MeetingFacts, stamp: datetime) -> File:
    """An invitation (METHOD:REQUEST) or, for a cancelled meeting, METHOD:CANCEL; the UID is
    the one the meetings' calendar feeds use, SEQUENCE the meeting's count of changes."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if meeting.cancelled else "REQUEST")
    entry = Event()
    entry.add("uid", f"{meeting.meeting_id}@shangliang")
    entry.add("dtstamp", stamp.astimezone(UTC))
    entry.add("sequence", meeting.sequence)
    entry.add("dtstart", meeting.starts_at.astimezone(UTC))
    entry.add("dtend", meeting.ends_at.astimezone(UTC))
    entry.add("summary", f"【{KIND_NAMES.get(meeting.kind, meeting.kind)}】{meeting.title}")
    entry.add("description", f"协商主题 / theme: {meeting.theme}")
    entry.add("status", "CANCELLED" if meeting.cancelled else "CONFIRMED")
    if meeting.venue:
        entry.add("location", meeting.venue)
    calendar.add_component(entry)
    return File(f"meeting-{meeting.meeting_id}.ics", CALENDAR_MEDIA_TYPE, calendar.to_ical())
