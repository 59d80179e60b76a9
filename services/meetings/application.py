"""Meetings' application (协商会议服务): commands and queries over the event store."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from services.meetings.bookings import AcceptedTopic, Schedule
from services.meetings.domain import (
    Meeting,
    meeting_id_for,
)
from services.meetings.reference import Roster
from services.meetings.rules import MeetingConflict, MeetingRuleBroken, stable_id
from shared.audit import HistoryEntry, read_history
from shared.clock import china_day
from shared.commands import Decision, decide_and_save, fingerprint
from shared.eventstore import ServiceApplication

T = TypeVar("T")


class MeetingNotFound(LookupError):
    pass


class MeetingsApplication(ServiceApplication):
    """协商会议: meetings, their reference data, and the topics intake accepted."""

    name = "meetings"

    def __init__(self, env: dict[str, str] | None = None, offices: Sequence[str] = ()) -> None:
        super().__init__(env)
        self.known_offices = list(offices)
        self._index_lock = threading.Lock()
        self._indexed_up_to = 0
        self._meeting_ids: list[UUID] = []

    # --- reading ------------------------------------------------------------------------------

    def get_meeting(self, meeting_id: UUID) -> Meeting:
        try:
            meeting = self.repository.get(meeting_id)
        except AggregateNotFoundError:
            raise MeetingNotFound(meeting_id) from None
        if not isinstance(meeting, Meeting):  # the id of a roster, topic or schedule
            raise MeetingNotFound(meeting_id)
        return meeting

    def history(self, meeting_id: UUID) -> list[dict[str, Any]]:
        """What happened to a meeting, event by event, with when each was recorded."""
        return [
            {
                "event": entry.event,
                "version": entry.version,
                "recorded_at": entry.recorded_at,
                **entry.data,
            }
            for entry in self.audit_trail(meeting_id)
        ]

    def audit_trail(self, meeting_id: UUID) -> list[HistoryEntry]:
        """Every stored event of a meeting with who caused it (retry bookkeeping left out)."""
        return read_history(self, meeting_id, skipped=frozenset({"RequestAnswered"}))

    def roster(self, office: str) -> Roster:
        """The office's reference data (empty if nothing was registered yet)."""
        try:
            roster: Roster = self.repository.get(Roster.id_for(office))
        except AggregateNotFoundError:
            return Roster.open(office)
        return roster

    def accepted_topic(self, issue_id: UUID) -> AcceptedTopic | None:
        try:
            topic: AcceptedTopic = self.repository.get(AcceptedTopic.id_for(issue_id))
        except AggregateNotFoundError:
            return None
        return topic

    def meetings(
        self,
        readable: Callable[[str], bool],
        office: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        person_id: str | None = None,
    ) -> list[Meeting]:
        """Meetings the caller may read, earliest first, filtered."""
        found = []
        for meeting_id in self._all_meeting_ids():
            meeting = self.get_meeting(meeting_id)
            day = china_day(meeting.starts_at)
            if not any(readable(o) for o in meeting.offices):
                continue
            if office is not None and office not in meeting.offices:
                continue
            if (kind is not None and meeting.kind != kind) or (
                status is not None and meeting.status != status
            ):
                continue
            if (date_from is not None and day < date_from) or (
                date_to is not None and day > date_to
            ):
                continue
            if person_id is not None and (
                meeting.invitations.get(person_id, {"reply": "declined"})["reply"] == "declined"
            ):
                continue
            found.append(meeting)
        return sorted(found, key=lambda m: (m.starts_at, str(m.id)))

    def _all_meeting_ids(self) -> list[UUID]:
        """Every meeting, from the notification log (only what is new since the last look)."""
        planned = get_topic(Meeting.Planned)
        with self._index_lock:
            while page := self.recorder.select_notifications(
                self._indexed_up_to, 1000, topics=(planned,), inclusive_of_start=False
            ):
                self._meeting_ids.extend(n.originator_id for n in page)
                self._indexed_up_to = page[-1].id
            return list(self._meeting_ids)

    # --- reference data (基础资料) -------------------------------------------------------------

    async def record_person(
        self,
        office: str,
        person_id: str | None,
        name: str,
        kind: str,
        department: str | None,
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        if person_id is None:
            generated = stable_id("person", office, idempotency_key) if idempotency_key else uuid4()
            person_id = f"{office}-{generated.hex[:12]}"
        chosen = person_id
        return await self._register(
            office,
            ["person", chosen, name, kind, department],
            idempotency_key,
            lambda roster: roster.record_person(chosen, name, kind, department),
            lambda roster: roster.people[chosen],
        )

    async def record_venue(
        self, office: str, name: str, address: str | None, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        return await self._register(
            office,
            ["venue", name, address],
            idempotency_key,
            lambda roster: roster.record_venue(name, address),
            lambda roster: roster.venues[name.strip()],
        )

    async def record_department(
        self, office: str, name: str, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        return await self._register(
            office,
            ["department", name],
            idempotency_key,
            lambda roster: roster.record_department(name),
            lambda roster: roster.departments[name.strip()],
        )

    async def _register(
        self,
        office: str,
        payload: list[Any],
        key: str | None,
        record: Callable[[Roster], tuple[dict[str, Any], bool]],
        recorded: Callable[[Roster], dict[str, Any]],
    ) -> tuple[dict[str, Any], bool]:
        """Register reference data once per Idempotency-Key (a retry answers what is there)."""
        request = fingerprint("reference", {"args": payload})

        def decide() -> Decision[tuple[dict[str, Any], bool]]:
            roster = self.roster(office)
            if key is not None and roster.answered_before(key, request):
                return (recorded(roster), False), []
            answer = record(roster)
            if key is not None:
                roster.remember(key, request)
            return answer, [roster]

        return await self._decide_and_save(decide)

    # --- planning ------------------------------------------------------------------------------

    async def plan_meeting(
        self,
        office: str,
        joint_offices: list[str],
        kind: str,
        title: str,
        theme: str,
        starts_at: datetime,
        ends_at: datetime,
        venue: str | None,
        submission_deadline: datetime | None,
        planned_at: datetime | None,
        idempotency_key: str | None = None,
    ) -> tuple[Meeting, bool]:
        """Plan a meeting and book its venue; returns it and whether it is new."""
        meeting_id = meeting_id_for(office, idempotency_key)
        offices = [office, *joint_offices]

        def decide() -> Decision[tuple[Meeting, bool]]:
            now = datetime.now(UTC)
            if idempotency_key is not None:
                try:
                    existing = self.get_meeting(meeting_id)
                except MeetingNotFound:
                    pass
                else:
                    if not existing.same_plan(
                        offices, kind, title, theme, starts_at, ends_at, venue, submission_deadline
                    ):
                        raise MeetingConflict(
                            "Idempotency-Key 已用于另一个不同的会议 / this Idempotency-Key was "
                            "already used for a different meeting"
                        )
                    return (existing, False), []
            # Reversed: a venue both offices registered is booked as the organiser's, the
            # same one `_schedules_of` finds later.
            venues = {name: o for o in reversed(offices) for name in self.roster(o).venues}
            meeting = Meeting.plan(
                meeting_id,
                office,
                joint_offices,
                kind,
                title,
                theme,
                starts_at,
                ends_at,
                venue,
                submission_deadline,
                planned_at or now,
                now,
                self.known_offices,
                set(venues),
            )
            changed: list[Aggregate] = [meeting]
            if venue is not None:
                schedule = self._schedule("venue", venues[venue], venue)
                schedule.book(meeting.id, meeting.title, starts_at, ends_at, f"会场 {venue}")
                changed.append(schedule)
            return (meeting, True), changed

        return await self._decide_and_save(decide)

    # --- commands on a meeting ------------------------------------------------------------------

    async def add_topic(
        self, meeting_id: UUID, issue_id: UUID, added_at: datetime | None, key: str | None
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            topic = self.accepted_topic(issue_id)
            if topic is None:
                raise MeetingConflict(
                    f"问题 {issue_id} 尚未被筛选为协商议题（或本服务尚未收到筛选结果）/ intake has "
                    "not accepted this issue as a topic (or meetings has not heard of it yet)"
                )
            meeting.add_topic(topic, added_at or now, now)
            return [topic]

        return await self._command(meeting_id, "add_topic", [issue_id, added_at], key, act)

    async def remove_topic(
        self, meeting_id: UUID, issue_id: UUID, removed_at: datetime | None, key: str | None
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            topic = self.accepted_topic(issue_id)
            if topic is None or str(issue_id) not in meeting.topics:
                raise MeetingConflict(
                    f"问题 {issue_id} 不在本次会议的议题中 / the issue is not on this agenda"
                )
            meeting.remove_topic(topic, removed_at or now, now)
            return [topic]

        return await self._command(meeting_id, "remove_topic", [issue_id, removed_at], key, act)

    async def invite(
        self, meeting_id: UUID, person_id: str, role: str | None, key: str | None
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            person = self._person(meeting, person_id)
            schedule = self._person_schedule(meeting, person)
            meeting.invite(person, role or person["kind"], schedule)
            return [] if schedule is None else [schedule]

        return await self._command(meeting_id, "invite", [person_id, role], key, act)

    async def reply(
        self, meeting_id: UUID, person_id: str, accepted: bool, key: str | None
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            invitation = meeting.invitations.get(person_id)
            schedule = None if invitation is None else self._person_schedule(meeting, invitation)
            meeting.reply(person_id, accepted, schedule)
            return [] if schedule is None else [schedule]

        return await self._command(meeting_id, "reply", [person_id, accepted], key, act)

    async def hold(
        self, meeting_id: UUID, held_at: datetime | None, attendance: list[str], key: str | None
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            meeting.hold(held_at or now, attendance, now)
            return []

        return await self._command(meeting_id, "hold", [held_at, attendance], key, act)

    async def receive_opinion(
        self,
        meeting_id: UUID,
        person_id: str,
        opinion: str,
        received_at: datetime | None,
        key: str | None,
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            meeting.receive_opinion(person_id, opinion, received_at or now, now)
            return []

        payload = [person_id, opinion, received_at]
        return await self._command(meeting_id, "opinion", payload, key, act)

    async def close_consultation(
        self, meeting_id: UUID, closed_at: datetime | None, key: str | None
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            meeting.close(closed_at or now, now)
            return []

        return await self._command(meeting_id, "close", [closed_at], key, act)

    async def conclude(
        self,
        meeting_id: UUID,
        concluded_at: datetime | None,
        outcomes: list[dict[str, Any]],
        key: str | None,
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            departments = {d for o in meeting.offices for d in self.roster(o).departments}
            meeting.conclude(concluded_at or now, outcomes, now, departments)
            return self._free_topics(meeting)

        payload = [concluded_at, outcomes]
        return await self._command(meeting_id, "conclude", payload, key, act)

    async def cancel(
        self, meeting_id: UUID, reason: str, cancelled_at: datetime | None, key: str | None
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            booked = self._schedules_of(meeting)
            meeting.cancel(reason, cancelled_at or now, now)
            for schedule in booked:
                schedule.release(meeting.id)
            return [*booked, *self._free_topics(meeting)]

        return await self._command(meeting_id, "cancel", [reason, cancelled_at], key, act)

    async def postpone(
        self,
        meeting_id: UUID,
        starts_at: datetime,
        ends_at: datetime,
        submission_deadline: datetime | None,
        reason: str,
        postponed_at: datetime | None,
        key: str | None,
    ) -> tuple[Meeting, bool]:
        def act(meeting: Meeting, now: datetime) -> list[Aggregate]:
            meeting.postpone(
                starts_at, ends_at, submission_deadline, reason, postponed_at or now, now
            )
            booked = self._schedules_of(meeting)
            for schedule in booked:
                label = (
                    f"会场 {schedule.key}"
                    if schedule.kind == "venue"
                    else (meeting.invitations[schedule.key]["name"])
                )
                schedule.book(meeting.id, meeting.title, starts_at, ends_at, label)
            return booked

        payload = [starts_at, ends_at, submission_deadline, reason, postponed_at]
        return await self._command(meeting_id, "postpone", payload, key, act)

    # --- the machinery of a command -----------------------------------------------------------

    async def _command(
        self,
        meeting_id: UUID,
        action: str,
        payload: list[Any],
        key: str | None,
        act: Callable[[Meeting, datetime], list[Aggregate]],
    ) -> tuple[Meeting, bool]:
        """Load the meeting, carry out `act` once per Idempotency-Key, store it atomically."""
        request = fingerprint(action, {"args": payload})

        def decide() -> Decision[tuple[Meeting, bool]]:
            meeting = self.get_meeting(meeting_id)
            if key is not None and meeting.answered_before(key, request):
                return (meeting, False), []
            others = act(meeting, datetime.now(UTC))
            if key is not None:
                meeting.remember(key, request)
            return (meeting, True), [meeting, *others]

        return await self._decide_and_save(decide)

    async def _decide_and_save(self, decide: Callable[[], Decision[T]]) -> T:
        """Decide on freshly loaded aggregates and store; on a concurrent change, decide again.

        Another request (or intake's events) may have changed one of the aggregates between
        loading and saving: the event store refuses the save, and the next attempt sees it.
        """
        try:
            return await decide_and_save(self.group_commit.save, decide)
        except IntegrityError:
            raise MeetingConflict(
                "并发修改过多，请重试 / too many concurrent changes; retry"
            ) from None

    def _person(self, meeting: Meeting, person_id: str) -> dict[str, Any]:
        for office in meeting.offices:
            person = self.roster(office).people.get(person_id)
            if person is not None:
                return person
        raise MeetingRuleBroken(
            "person_id",
            f"未登记的参会人员 / unknown participant {person_id!r}: register them under /people "
            "of one of the meeting's offices",
        )

    def _schedule(self, kind: str, office: str, key: str) -> Schedule:
        try:
            schedule: Schedule = self.repository.get(Schedule.id_for(kind, office, key))
        except AggregateNotFoundError:
            return Schedule.open(kind, office, key)
        return schedule

    def _person_schedule(self, meeting: Meeting, person: dict[str, Any]) -> Schedule | None:
        # A written consultation takes nobody's time slot.
        if meeting.kind == "written":
            return None
        return self._schedule("person", person["office"], person["person_id"])

    def _schedules_of(self, meeting: Meeting) -> list[Schedule]:
        """The venue's and the invited people's schedules that hold this meeting."""
        schedules = [
            self._schedule("person", p["office"], p["person_id"]) for p in meeting.booked_people()
        ]
        if meeting.venue is not None:
            office = next(o for o in meeting.offices if meeting.venue in self.roster(o).venues)
            schedules.append(self._schedule("venue", office, meeting.venue))
        return [s for s in schedules if str(meeting.id) in s.bookings]

    def _free_topics(self, meeting: Meeting) -> list[Aggregate]:
        topics = [self.accepted_topic(UUID(issue_id)) for issue_id in meeting.topics]
        for topic in topics:
            if topic is not None:
                topic.release(meeting.id)
        return [t for t in topics if t is not None]
