"""What the consumers write (事件记录): the facts of upstream events that reminders, digests
and attachments need, and the notices the events make with their deliveries; and how the
store writes times and delivery ids. A mixin of the store (services/notifications/store.py),
whose `read` and `write` it uses, in the same transaction as the stream position.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Tracking

from services.notifications.attachments import CaseHeading, File, calendar_file, letter_file
from services.notifications.domain import MeetingFacts, Notice, notices_for
from shared.clock import china_day
from shared.consumer import Delivered
from shared.contracts import (
    CaseOpenedV1,
    CaseOverdueV1,
    CaseReopenedV1,
    CaseVerifiedV1,
    CompletionReportedV1,
    IssueReopenedV1,
    IssueScreenedV1,
    IssueSubmittedV1,
    LetterIssuedV1,
    MeetingCancelledV1,
    MeetingPlannedV1,
    MeetingPostponedV1,
)
from shared.views import sends_sql

# --- the SQL (in SQLite's words; shared/views.py says it in PostgreSQL's) -------------------

CASE_HEADINGS = (
    "SELECT case_id, origin, subject, meeting_title FROM notifications_cases"
    " WHERE case_id IN (SELECT value FROM json_each(?))"
)
INSERT_CASE = (
    "INSERT INTO notifications_cases VALUES (?, ?, ?, ?, NULL, 0, 0, ?, ?, ?)"
    " ON CONFLICT (case_id) DO NOTHING"
)
CASE_LETTERED = "UPDATE notifications_cases SET number = ?, deadline = ? WHERE case_id = ?"
CASE_REOPENED = (
    "UPDATE notifications_cases SET deadline = ?, done = 0, overdue = 0 WHERE case_id = ?"
)
CASE_DONE = "UPDATE notifications_cases SET done = 1 WHERE case_id = ?"
CASE_OVERDUE = "UPDATE notifications_cases SET overdue = 1 WHERE case_id = ?"
INSERT_ISSUE = (
    "INSERT INTO notifications_issues VALUES (?, ?, ?, 0) ON CONFLICT (issue_id) DO NOTHING"
)
ISSUE_SCREENED = "UPDATE notifications_issues SET screened = ? WHERE issue_id = ?"
INSERT_MEETING = (
    "INSERT INTO notifications_meetings VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0)"
    " ON CONFLICT (meeting_id) DO NOTHING"
)
MEETING_POSTPONED = (
    "UPDATE notifications_meetings SET starts_at = ?, ends_at = ?,"
    " sequence = sequence + 1 WHERE meeting_id = ?"
)
MEETING_CANCELLED = (
    "UPDATE notifications_meetings SET cancelled = 1, sequence = sequence + 1 WHERE meeting_id = ?"
)
MEETING = "SELECT * FROM notifications_meetings WHERE meeting_id = ?"
INSERT_NOTICE = (
    "INSERT INTO notifications_notices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)
RECIPIENT = "SELECT * FROM notifications_recipients WHERE key = ?"
INSERT_DELIVERY = (
    "INSERT INTO notifications_deliveries"
    " (id, notice_id, channel, address, secret, status, attempts, not_before, sent_at)"
    " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (id) DO NOTHING"
)


@sends_sql
def _statements() -> Iterator[str]:
    yield from (CASE_HEADINGS, INSERT_CASE, CASE_LETTERED, CASE_REOPENED, CASE_DONE)
    yield from (CASE_OVERDUE, INSERT_ISSUE, ISSUE_SCREENED, INSERT_MEETING, MEETING_POSTPONED)
    yield from (MEETING_CANCELLED, MEETING, INSERT_NOTICE, RECIPIENT, INSERT_DELIVERY)


def stamp(moment: datetime) -> str:
    """A time as stored: UTC, fixed width, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unstamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def delivery_id(notice: uuid.UUID, channel: str, address: str) -> str:
    return str(uuid.uuid5(notice, f"{channel}|{address}"))


class UpstreamRecorder:
    """The consumer's side of the store (`c`: a cursor in SQLite's words)."""

    _letters: dict[str, File]
    office_names: Mapping[str, str] = {}
    """The headings of the offices' letters where this deployment set its own."""

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        # The letters (DOCX, tens of milliseconds each) are made before the transaction: a
        # batch holding the one SQLite writer that long kept the sender from recording
        # what it had sent.
        letters = [m for m in messages if isinstance(m.contract, LetterIssuedV1)]
        headings = self._headings(messages, {str(m.contract.case_id) for m in letters})
        self._letters = {
            m.envelope.id: letter_file(
                m.contract, headings.get(str(m.contract.case_id)), self.office_names
            )
            for m in letters
        }
        super().apply(messages, tracking)  # type: ignore[misc]

    def _headings(self, messages: Sequence[Delivered], cases: set[str]) -> dict[str, CaseHeading]:
        """What each lettered case was opened for: from this batch, or as stored before."""
        found = {
            str(m.contract.case_id): CaseHeading(
                m.contract.origin, m.contract.requirements, m.contract.meeting_title
            )
            for m in messages
            if isinstance(m.contract, CaseOpenedV1) and str(m.contract.case_id) in cases
        }
        wanted = sorted(cases - found.keys())
        if wanted:
            with self.read() as c:
                c.execute(CASE_HEADINGS, (json.dumps(wanted),))
                for r in c.fetchall():
                    found[r["case_id"]] = CaseHeading(r["origin"], r["subject"], r["meeting_title"])
        return found

    def apply_message(self, c: Any, stream: str, message: Delivered) -> None:
        contract = message.contract
        if contract is None:
            return
        meeting = self._record_facts(c, contract)
        for notice in notices_for(message.envelope.id, contract, meeting):
            self.add_notice(c, notice, self._attachment(notice, meeting))

    def _attachment(self, notice: Notice, meeting: MeetingFacts | None) -> File | None:
        if notice.attachment == "letter":
            return self._letters.get(notice.cause)
        if notice.attachment == "calendar" and meeting is not None:
            return calendar_file(meeting, notice.created_at)
        return None

    def _record_facts(self, c: Any, contract: Any) -> MeetingFacts | None:
        match contract:
            case CaseOpenedV1():
                c.execute(
                    INSERT_CASE,
                    (
                        str(contract.case_id),
                        contract.office,
                        contract.department,
                        contract.deadline.isoformat(),
                        contract.origin,
                        contract.requirements,
                        contract.meeting_title,
                    ),
                )
            case LetterIssuedV1():
                c.execute(
                    CASE_LETTERED,
                    (contract.number, contract.deadline.isoformat(), str(contract.case_id)),
                )
            case CaseReopenedV1():
                c.execute(
                    CASE_REOPENED,
                    (contract.deadline.isoformat(), str(contract.case_id)),
                )
            case CompletionReportedV1() | CaseVerifiedV1():
                c.execute(CASE_DONE, (str(contract.case_id),))
            case CaseOverdueV1():
                c.execute(CASE_OVERDUE, (str(contract.case_id),))
            case IssueSubmittedV1():
                c.execute(
                    INSERT_ISSUE,
                    (
                        str(contract.issue_id),
                        contract.office,
                        china_day(contract.submitted_at).isoformat(),
                    ),
                )
            case IssueScreenedV1() | IssueReopenedV1():
                c.execute(
                    ISSUE_SCREENED,
                    (int(isinstance(contract, IssueScreenedV1)), str(contract.issue_id)),
                )
            case MeetingPlannedV1():
                c.execute(
                    INSERT_MEETING,
                    (
                        str(contract.meeting_id),
                        json.dumps(contract.offices),
                        contract.kind,
                        contract.title,
                        contract.theme,
                        stamp(contract.starts_at),
                        stamp(contract.ends_at),
                        contract.venue,
                    ),
                )
                return self._meeting(c, str(contract.meeting_id))
            case MeetingPostponedV1():
                c.execute(
                    MEETING_POSTPONED,
                    (stamp(contract.starts_at), stamp(contract.ends_at), str(contract.meeting_id)),
                )
                return self._meeting(c, str(contract.meeting_id))
            case MeetingCancelledV1():
                c.execute(MEETING_CANCELLED, (str(contract.meeting_id),))
                return self._meeting(c, str(contract.meeting_id))
        return None

    def _meeting(self, c: Any, meeting_id: str) -> MeetingFacts | None:
        c.execute(MEETING, (meeting_id,))
        row = c.fetchone()
        if row is None:
            return None
        return MeetingFacts(
            row["meeting_id"],
            json.loads(row["offices"]),
            row["kind"],
            row["title"],
            row["theme"],
            unstamp(row["starts_at"]),
            unstamp(row["ends_at"]),
            row["venue"],
            int(row["sequence"]),
            bool(row["cancelled"]),
        )

    def add_notice(self, c: Any, notice: Notice, file: File | None) -> None:
        """The notice and one delivery per address its recipient has now (the in-app inbox
        counts as delivered at once); kept once whatever the number of calls."""
        c.execute(
            INSERT_NOTICE,
            (
                str(notice.id),
                notice.cause,
                notice.kind,
                notice.office,
                notice.recipient,
                notice.subject,
                notice.body,
                stamp(notice.created_at),
                notice.subject_id,
                file.filename if file else None,
                file.media_type if file else None,
                base64.b64encode(file.content).decode() if file else None,
            ),
        )
        c.execute(RECIPIENT, (notice.recipient,))
        recipient = c.fetchone()
        if recipient is None:
            return
        # Due from when the notice was made (a clock of its own, in tests and the demo).
        now = stamp(notice.created_at)
        rows = [("email", address, None, "pending") for address in json.loads(recipient["emails"])]
        rows += [
            (robot["kind"], robot["url"], robot.get("secret"), "pending")
            for robot in json.loads(recipient["robots"])
        ]
        rows += [("inbox", user, None, "sent") for user in json.loads(recipient["users"])]
        c.executemany(
            INSERT_DELIVERY,
            [
                (
                    delivery_id(notice.id, channel, address),
                    str(notice.id),
                    channel,
                    address,
                    secret,
                    status,
                    now,
                    now if status == "sent" else None,
                )
                for channel, address, secret, status in rows
            ],
        )

    # per database: `read` comes from shared/views.py, `write` from the store's subclasses
    read: Any
    write: Any
