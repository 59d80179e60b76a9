"""Meetings' domain (协商会议): the `Meeting` aggregate and its rules, no I/O.

The aggregates a meeting books or takes from, `AcceptedTopic` and `Schedule`, are in
`bookings.py`; the refusals, ids and zone every meetings aggregate shares are in `rules.py`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from services.meetings.bookings import AcceptedTopic, Schedule
from services.meetings.rules import MeetingConflict, MeetingRuleBroken, stable_id
from shared.clock import CHINA, china_day

CLOCK_SKEW = timedelta(minutes=5)
KINDS = ("thematic", "onsite", "written")
KIND_NAMES = {"thematic": "专题协商会", "onsite": "现场协商会", "written": "书面协商"}
STATUS_NAMES = {
    "planned": "已计划",
    "held": "已召开",
    "concluded": "已形成成果",
    "cancelled": "已取消",
}


def meeting_id_for(office: str, idempotency_key: str | None) -> UUID:
    """A retried plan with the same key maps to the same meeting, so it cannot duplicate."""
    return uuid4() if idempotency_key is None else stable_id("meeting", office, idempotency_key)


def outcome_id_for(meeting_id: UUID, index: int) -> UUID:
    """The same outcome always gets the same id, so supervision opens its case once."""
    return uuid5(meeting_id, f"outcome-{index}")


def not_in_future(field: str, moment: datetime, now: datetime, what: str) -> None:
    if moment > now.astimezone(UTC) + CLOCK_SKEW:
        raise MeetingRuleBroken(field, f"{what}不能在将来 / {field} is in the future")


def not_before(field: str, moment: datetime, earlier: datetime, step: str, step_en: str) -> None:
    """A recorded happening cannot precede the step it follows (offices back-date records)."""
    if moment < earlier:
        raise MeetingRuleBroken(
            field, f"时间早于{step} / {field} is before {step_en} ({earlier.isoformat()})"
        )


class Meeting(Aggregate):
    """“有事来商量”协商会议: 专题协商会, 现场协商会 or 书面协商, from plan to outcomes.

    Events carry what their published contracts need (offices, names, the agenda), since the
    relay sees one event at a time.
    """

    id: UUID

    @event("Planned")
    def __init__(
        self,
        offices: list[str],
        kind: str,
        title: str,
        theme: str,
        starts_at: datetime,
        ends_at: datetime,
        venue: str | None,
        submission_deadline: datetime | None,
        planned_at: datetime,
    ) -> None:
        self.offices = offices
        self.kind = kind
        self.title = title
        self.theme = theme
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.venue = venue
        self.submission_deadline = submission_deadline
        self.planned_at = planned_at
        self.status = "planned"
        self.topics: dict[str, dict[str, Any]] = {}
        self.invitations: dict[str, dict[str, Any]] = {}
        self.attendance: list[dict[str, str]] = []
        self.opinions: list[dict[str, Any]] = []
        self.outcomes: list[dict[str, Any]] = []
        self.postponements: list[dict[str, Any]] = []
        self.held_at: datetime | None = None
        self.concluded_at: datetime | None = None
        self.cancelled_at: datetime | None = None
        self.cancel_reason: str | None = None
        self.answered: dict[str, str] = {}

    # --- planning -------------------------------------------------------------------------

    @classmethod
    def plan(
        cls,
        meeting_id: UUID,
        office: str,
        joint_offices: list[str],
        kind: str,
        title: str,
        theme: str,
        starts_at: datetime,
        ends_at: datetime,
        venue: str | None,
        submission_deadline: datetime | None,
        planned_at: datetime,
        now: datetime,
        known_offices: list[str],
        known_venues: set[str],
    ) -> Meeting:
        """Plan a meeting, checking what a plan must satisfy."""
        if kind not in KINDS:
            raise MeetingRuleBroken("kind", f"未知的会议类型 / unknown kind {kind!r}")
        for field, text in (("title", title), ("theme", theme)):
            if not text.strip():
                raise MeetingRuleBroken(field, "不能为空 / must not be blank")
        for joint in joint_offices:
            if joint not in known_offices:
                raise MeetingRuleBroken("joint_offices", f"未知的政协 / unknown office {joint!r}")
        if office in joint_offices or len(set(joint_offices)) != len(joint_offices):
            raise MeetingRuleBroken(
                "joint_offices", "联合举办的政协重复 / an office is named more than once"
            )
        not_in_future("planned_at", planned_at, now, "计划时间")
        not_before("starts_at", starts_at, planned_at, "计划时间", "the meeting was planned")
        cls._check_window(kind, starts_at, ends_at, venue, submission_deadline, planned_at)
        if venue is not None and venue not in known_venues:
            raise MeetingRuleBroken(
                "venue", f"未登记的会场 / unknown venue {venue!r}: register it under /venues"
            )
        return cls(
            id=meeting_id,
            offices=[office, *joint_offices],
            kind=kind,
            title=title.strip(),
            theme=theme.strip(),
            starts_at=starts_at,
            ends_at=ends_at,
            venue=venue,
            submission_deadline=submission_deadline,
            planned_at=planned_at,
        )

    @staticmethod
    def _check_window(
        kind: str,
        starts_at: datetime,
        ends_at: datetime,
        venue: str | None,
        deadline: datetime | None,
        reference: datetime,
    ) -> None:
        if ends_at <= starts_at:
            raise MeetingRuleBroken(
                "ends_at", "结束时间不晚于开始时间 / the meeting ends before it starts"
            )
        if kind == "written":
            if venue is not None:
                raise MeetingRuleBroken(
                    "venue", "书面协商不设会场 / a written consultation has no venue"
                )
            if deadline is None:
                raise MeetingRuleBroken(
                    "submission_deadline",
                    "书面协商需要提交截止时间 / a written consultation needs a submission deadline",
                )
            if deadline <= reference:
                raise MeetingRuleBroken(
                    "submission_deadline",
                    "提交截止时间已过 / the submission deadline is in the past",
                )
            if deadline <= starts_at:
                raise MeetingRuleBroken(
                    "submission_deadline",
                    "提交截止时间早于开始时间 / the submission deadline is before the start",
                )
        else:
            if venue is None:
                raise MeetingRuleBroken("venue", "需要会场 / a venue is required")
            if deadline is not None:
                raise MeetingRuleBroken(
                    "submission_deadline",
                    "只有书面协商有提交截止时间 / only a written consultation has a deadline",
                )

    def same_plan(
        self,
        offices: list[str],
        kind: str,
        title: str,
        theme: str,
        starts_at: datetime,
        ends_at: datetime,
        venue: str | None,
        submission_deadline: datetime | None,
    ) -> bool:
        """Whether a retried plan asks for exactly what this meeting was planned as."""
        first = self.postponements[0] if self.postponements else None
        planned_window = (
            (first["from_starts_at"], first["from_ends_at"], first["from_deadline"])
            if first
            else (self.starts_at, self.ends_at, self.submission_deadline)
        )
        return (self.offices, self.kind, self.title, self.theme, self.venue) == (
            offices,
            kind,
            title.strip(),
            theme.strip(),
            venue,
        ) and planned_window == (starts_at, ends_at, submission_deadline)

    @property
    def office(self) -> str:
        """The organising office: the subject of every event."""
        return self.offices[0]

    @property
    def sequence(self) -> int:
        """How often attendees' calendars must take a new version (iCalendar SEQUENCE)."""
        return len(self.postponements) + (1 if self.status == "cancelled" else 0)

    @property
    def closes_at(self) -> datetime | None:
        """Written consultation: when opinions stop being taken."""
        return self.submission_deadline if self.kind == "written" else None

    def _require_status(self, wanted: str, doing: str) -> None:
        if self.status != wanted:
            raise MeetingConflict(
                f"会议当前状态为「{STATUS_NAMES[self.status]}」，不能{doing} / the meeting is "
                f"{self.status}"
            )

    # --- agenda (议题) ----------------------------------------------------------------------

    def add_topic(self, topic: AcceptedTopic, added_at: datetime, now: datetime) -> None:
        self._require_status("planned", "增加议题")
        not_in_future("added_at", added_at, now, "列入时间")
        not_before("added_at", added_at, self.planned_at, "计划时间", "the meeting was planned")
        not_before("added_at", added_at, topic.screened_at, "筛选时间", "the issue was screened")
        if topic.office not in self.offices:
            raise MeetingRuleBroken(
                "issue_id",
                f"问题属于{topic.office}政协，不是本次会议的举办方 / the issue belongs to office "
                f"{topic.office!r}, which does not hold this meeting",
            )
        topic.take(self.id, self.title)
        if str(topic.issue_id) not in self.topics:
            self._topic_added(
                topic.issue_id,
                topic.office,
                topic.title,
                self.offices,
                added_at,
                meeting_title=self.title,
                starts_at=self.starts_at,
            )

    @event("TopicAdded")
    def _topic_added(
        self,
        issue_id: UUID,
        issue_office: str,
        issue_title: str,
        offices: list[str],
        added_at: datetime,
        meeting_title: str | None = None,
        starts_at: datetime | None = None,
    ) -> None:
        """`meeting_title` and `starts_at` travel with the event for intake's public timeline
        (None in events stored before)."""
        self.topics[str(issue_id)] = {
            "issue_id": issue_id,
            "office": issue_office,
            "title": issue_title,
            "added_at": added_at,
        }

    def remove_topic(self, topic: AcceptedTopic, removed_at: datetime, now: datetime) -> None:
        self._require_status("planned", "移出议题")
        not_in_future("removed_at", removed_at, now, "移出时间")
        if str(topic.issue_id) not in self.topics:
            raise MeetingConflict(
                f"问题 {topic.issue_id} 不在本次会议的议题中 / the issue is not on this agenda"
            )
        topic.release(self.id)
        self._topic_removed(topic.issue_id, topic.office, self.offices, removed_at)

    @event("TopicRemoved")
    def _topic_removed(
        self, issue_id: UUID, issue_office: str, offices: list[str], removed_at: datetime
    ) -> None:
        del self.topics[str(issue_id)]

    # --- participants (参会人员) -------------------------------------------------------------

    def invite(self, person: dict[str, Any], role: str, schedule: Schedule | None) -> None:
        """Invite a person of one of the meeting's offices; `schedule` is theirs (None for a
        written consultation, which takes no one's time slot)."""
        self._require_status("planned", "邀请参会人员")
        current = self.invitations.get(person["person_id"])
        if current is not None and current["role"] == role:
            return
        if current is not None:
            raise MeetingConflict(
                f"{person['name']} 已以「{current['role']}」身份受邀 / {person['person_id']} is "
                f"already invited as {current['role']!r}"
            )
        if schedule is not None:
            schedule.book(self.id, self.title, self.starts_at, self.ends_at, person["name"])
        self._invited(person["person_id"], person["office"], person["name"], role)

    @event("ParticipantInvited")
    def _invited(self, person_id: str, office: str, name: str, role: str) -> None:
        self.invitations[person_id] = {
            "person_id": person_id,
            "office": office,
            "name": name,
            "role": role,
            "reply": None,
        }

    def reply(self, person_id: str, accepted: bool, schedule: Schedule | None) -> None:
        """Confirmed (确认参加) or declined (请假); a decline frees the person's time."""
        self._require_status("planned", "答复邀请")
        invitation = self.invitations.get(person_id)
        if invitation is None:
            raise MeetingConflict(
                f"{person_id} 未受邀参加本次会议 / {person_id} is not invited to this meeting"
            )
        if schedule is not None:
            if accepted:
                schedule.book(self.id, self.title, self.starts_at, self.ends_at, invitation["name"])
            else:
                schedule.release(self.id)
        answer = "confirmed" if accepted else "declined"
        if invitation["reply"] != answer:
            self._replied(person_id, answer)

    @event("InvitationAnswered")
    def _replied(self, person_id: str, answer: str) -> None:
        self.invitations[person_id]["reply"] = answer

    def _attendee(self, person_id: str) -> dict[str, str]:
        invitation = self.invitations[person_id]
        return {"person_id": person_id, "name": invitation["name"], "role": invitation["role"]}

    # --- holding (召开) ---------------------------------------------------------------------

    def hold(self, held_at: datetime, attendance: list[str], now: datetime) -> None:
        if self.kind == "written":
            raise MeetingConflict(
                "书面协商不召开会议，请收集意见后结束 / a written consultation is closed, not held"
            )
        self._require_status("planned", "记录召开")
        not_in_future("held_at", held_at, now, "召开时间")
        not_before("held_at", held_at, self.planned_at, "计划时间", "the meeting was planned")
        # Held on an earlier day than scheduled: the office postpones (reschedules) it first.
        day_start = self.starts_at.astimezone(CHINA).replace(hour=0, minute=0, second=0)
        not_before("held_at", held_at, day_start, "会议日期", "the day it is scheduled for")
        if not attendance:
            raise MeetingRuleBroken("attendance", "需要出席人员 / nobody attended")
        for person_id in attendance:
            invitation = self.invitations.get(person_id)
            if invitation is None or invitation["reply"] == "declined":
                raise MeetingRuleBroken(
                    "attendance",
                    f"{person_id} 未受邀或已请假 / {person_id} was not invited or declined",
                )
        present = [self._attendee(p) for p in dict.fromkeys(attendance)]
        self._held(self.offices, self.kind, held_at, present, self._agenda())

    def _agenda(self) -> list[UUID]:
        return [t["issue_id"] for t in self.topics.values()]

    @event("Held")
    def _held(
        self,
        offices: list[str],
        kind: str,
        held_at: datetime,
        attendance: list[dict[str, str]],
        issue_ids: list[UUID],
    ) -> None:
        self.status = "held"
        self.held_at = held_at
        self.attendance = attendance

    def receive_opinion(
        self, person_id: str, opinion: str, received_at: datetime, now: datetime
    ) -> None:
        """书面意见: from an invited, non-declined participant, until the deadline."""
        if self.kind != "written":
            raise MeetingConflict(
                "只有书面协商收集书面意见 / only a written consultation takes opinions"
            )
        self._require_status("planned", "收集意见")
        not_in_future("received_at", received_at, now, "收到时间")
        not_before("received_at", received_at, self.planned_at, "计划时间", "it was planned")
        assert self.submission_deadline is not None
        if received_at > self.submission_deadline:
            raise MeetingConflict("已过提交截止时间 / the submission deadline has passed")
        if not opinion.strip():
            raise MeetingRuleBroken("opinion", "意见不能为空 / the opinion must not be blank")
        invitation = self.invitations.get(person_id)
        if invitation is None or invitation["reply"] == "declined":
            raise MeetingRuleBroken(
                "person_id", f"{person_id} 未受邀或已请假 / {person_id} was not invited or declined"
            )
        self._opinion_received(
            self.offices, self._attendee(person_id), opinion.strip(), received_at
        )

    @event("OpinionReceived")
    def _opinion_received(
        self,
        offices: list[str],
        participant: dict[str, str],
        opinion: str,
        received_at: datetime,
    ) -> None:
        self.opinions.append(
            {"participant": participant, "opinion": opinion, "received_at": received_at}
        )

    def close(self, closed_at: datetime, now: datetime) -> None:
        """Written consultation: no more opinions; it counts as held, the givers attending."""
        if self.kind != "written":
            raise MeetingConflict(
                "只有书面协商需要结束收集 / only a written consultation is closed"
            )
        self._require_status("planned", "结束意见收集")
        not_in_future("closed_at", closed_at, now, "结束时间")
        not_before("closed_at", closed_at, self.planned_at, "计划时间", "it was planned")
        if self.opinions and closed_at < self.opinions[-1]["received_at"]:
            raise MeetingRuleBroken(
                "closed_at", "结束时间早于最后一份意见 / closed before the last opinion arrived"
            )
        givers = {o["participant"]["person_id"]: o["participant"] for o in self.opinions}
        self._held(self.offices, self.kind, closed_at, list(givers.values()), self._agenda())

    # --- conclusion (形成成果) ----------------------------------------------------------------

    def conclude(
        self,
        concluded_at: datetime,
        outcomes: list[dict[str, Any]],
        now: datetime,
        known_departments: set[str],
    ) -> None:
        """Outcomes: `issue_ids` from the agenda, `recommendation`, `department`, `deadline`."""
        not_in_future("concluded_at", concluded_at, now, "形成成果时间")
        if (
            self.kind == "written"
            and self.status == "planned"
            and self.submission_deadline is not None
            and self.submission_deadline <= min(concluded_at, now)
        ):
            # The deadline closed it even though nobody said so.
            self.close(self.submission_deadline, now)
        if self.status == "planned":
            raise MeetingConflict(
                "会议尚未召开（书面协商尚未截止或结束），不能形成成果 / the meeting has not been "
                "held (or the written consultation not closed) yet"
            )
        self._require_status("held", "形成成果")
        assert self.held_at is not None
        if concluded_at < self.held_at:
            raise MeetingRuleBroken(
                "concluded_at", "形成成果时间早于召开时间 / concluded before the meeting was held"
            )
        if not outcomes:
            raise MeetingRuleBroken("outcomes", "至少需要一项协商成果 / at least one outcome")
        day = china_day(concluded_at)
        published = [
            self._checked_outcome(n, outcome, day, known_departments)
            for n, outcome in enumerate(outcomes)
        ]
        self._concluded(self.offices, self.kind, self.title, concluded_at, published)

    def _checked_outcome(
        self, n: int, outcome: dict[str, Any], day: date, known_departments: set[str]
    ) -> dict[str, Any]:
        field = f"outcomes.{n}"
        issue_ids: list[UUID] = list(dict.fromkeys(outcome["issue_ids"]))
        if not issue_ids:
            raise MeetingRuleBroken(f"{field}.issue_ids", "需要所回应的议题 / name its issues")
        for issue_id in issue_ids:
            if str(issue_id) not in self.topics:
                raise MeetingRuleBroken(
                    f"{field}.issue_ids",
                    f"问题 {issue_id} 不在本次会议的议题中 / the issue is not on this agenda",
                )
        if not outcome["recommendation"].strip():
            raise MeetingRuleBroken(
                f"{field}.recommendation", "意见建议不能为空 / the recommendation is blank"
            )
        if outcome["department"] not in known_departments:
            raise MeetingRuleBroken(
                f"{field}.department",
                f"未登记的承办单位 / unknown department {outcome['department']!r}",
            )
        if outcome["deadline"] <= day:
            raise MeetingRuleBroken(
                f"{field}.deadline",
                "办理期限不晚于形成成果的日期 / the deadline is not after the conclusion date",
            )
        return {
            "outcome_id": outcome_id_for(self.id, n),
            "issue_ids": issue_ids,
            "recommendation": outcome["recommendation"].strip(),
            "department": outcome["department"],
            "deadline": outcome["deadline"],
        }

    @event("Concluded")
    def _concluded(
        self,
        offices: list[str],
        kind: str,
        title: str,
        concluded_at: datetime,
        outcomes: list[dict[str, Any]],
    ) -> None:
        self.status = "concluded"
        self.concluded_at = concluded_at
        self.outcomes = outcomes

    # --- cancelling and postponing (取消、延期) ---------------------------------------------

    def cancel(self, reason: str, cancelled_at: datetime, now: datetime) -> None:
        self._require_status("planned", "取消")
        not_in_future("cancelled_at", cancelled_at, now, "取消时间")
        if not reason.strip():
            raise MeetingRuleBroken("reason", "需要取消原因 / a reason is required")
        self._cancelled(self.offices, cancelled_at, reason.strip(), self._agenda())

    @event("Cancelled")
    def _cancelled(
        self, offices: list[str], cancelled_at: datetime, reason: str, issue_ids: list[UUID]
    ) -> None:
        self.status = "cancelled"
        self.cancelled_at = cancelled_at
        self.cancel_reason = reason

    def postpone(
        self,
        starts_at: datetime,
        ends_at: datetime,
        submission_deadline: datetime | None,
        reason: str,
        postponed_at: datetime,
        now: datetime,
    ) -> None:
        """A new time window; the application re-books the venue and the participants."""
        self._require_status("planned", "延期")
        not_in_future("postponed_at", postponed_at, now, "延期时间")
        not_before("postponed_at", postponed_at, self.planned_at, "计划时间", "it was planned")
        not_before("starts_at", starts_at, postponed_at, "延期时间", "the postponement")
        if not reason.strip():
            raise MeetingRuleBroken("reason", "需要延期原因 / a reason is required")
        if self.kind == "written" and submission_deadline is None:
            submission_deadline = self.submission_deadline
        self._check_window(
            self.kind, starts_at, ends_at, self.venue, submission_deadline, postponed_at
        )
        self._postponed(
            self.offices, starts_at, ends_at, submission_deadline, postponed_at, reason.strip()
        )

    @event("Postponed")
    def _postponed(
        self,
        offices: list[str],
        starts_at: datetime,
        ends_at: datetime,
        submission_deadline: datetime | None,
        postponed_at: datetime,
        reason: str,
    ) -> None:
        self.postponements.append(
            {
                "from_starts_at": self.starts_at,
                "from_ends_at": self.ends_at,
                "from_deadline": self.submission_deadline,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "submission_deadline": submission_deadline,
                "postponed_at": postponed_at,
                "reason": reason,
            }
        )
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.submission_deadline = submission_deadline

    # --- retried requests (幂等) -------------------------------------------------------------

    def answered_before(self, key: str, fingerprint: str) -> bool:
        """Whether this request was already carried out; the same key for another → 409."""
        seen = self.answered.get(key)
        if seen is None:
            return False
        if seen != fingerprint:
            raise MeetingConflict(
                "Idempotency-Key 已用于另一个不同的请求 / this Idempotency-Key was already used "
                "for a different request"
            )
        return True

    @event("RequestAnswered")
    def remember(self, key: str, fingerprint: str) -> None:
        self.answered[key] = fingerprint

    def booked_people(self) -> list[dict[str, Any]]:
        """Invited people who hold a slot: not declined, and not for a written consultation."""
        if self.kind == "written":
            return []
        return [i for i in self.invitations.values() if i["reply"] != "declined"]
