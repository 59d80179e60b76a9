"""Supervision's application (督办服务): commands, the deadline scheduler's scan, and the list
of cases."""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.supervision.domain import (
    Ladder,
    Letter,
    LetterRegister,
    SupervisionCase,
    letter_number,
)
from services.supervision.settings import SupervisionSettings
from shared.audit import HistoryEntry, read_history, stamp, system_actor
from shared.clock import add_working_days, china_day
from shared.commands import (
    Command,
    Decision,
    IdempotencyConflict,
    decide_and_save,
    retry_on_conflict_sync,
)
from shared.eventstore import ServiceApplication

Guard = Callable[[SupervisionCase], None]
"""Raises if the caller may not touch this case (the API's access rule)."""


class CaseNotFound(LookupError):
    pass


@dataclass(frozen=True)
class CaseFilter:
    """What `GET /cases` narrows the list by; None means any."""

    offices: frozenset[str] | None = None
    department: str | None = None
    status: str | None = None
    issue_id: UUID | None = None
    meeting_id: UUID | None = None
    overdue: bool | None = None

    def admits(self, case: SupervisionCase) -> bool:
        return (
            (self.offices is None or case.office in self.offices)
            and (self.department is None or case.department == self.department)
            and (self.status is None or case.status == self.status)
            and (self.issue_id is None or self.issue_id in case.issue_ids)
            and (self.meeting_id is None or case.meeting_id == self.meeting_id)
            and (self.overdue is None or case.overdue == self.overdue)
        )


CASE_ORDERS: dict[str, Callable[[SupervisionCase], Any]] = {
    "opened": lambda c: (c.opened_at, c.id),
    # A department's inbox (待办): cases still to be accepted first, the nearest deadline first.
    "deadline": lambda c: (c.status == "verified", c.deadline, c.opened_at, c.id),
}
"""The orders of `GET /cases?sort=`: oldest opened first, or open cases by deadline."""


class CaseIndex:
    """Every case as of the end of this application's notification log, kept in step by
    applying new stored events to the cached aggregates (for lists and the scheduler's scan;
    single cases are read from the event store itself)."""

    def __init__(self, application: SupervisionApplication) -> None:
        self._app = application
        self._lock = threading.Lock()
        self._position = 0
        self._cases: dict[UUID, SupervisionCase] = {}

    def cases(self) -> list[SupervisionCase]:
        with self._lock:
            while notifications := self._app.recorder.select_notifications(
                self._position, 1000, inclusive_of_start=False
            ):
                for notification in notifications:
                    domain_event = self._app.mapper.to_domain_event(notification)
                    if isinstance(domain_event, SupervisionCase.Event):
                        case_id = domain_event.originator_id
                        # Copied before it changes: a case handed out earlier may still be
                        # read by another thread.
                        known = copy.deepcopy(self._cases.get(case_id))
                        self._cases[case_id] = domain_event.mutate(known)
                self._position = notifications[-1].id
            return list(self._cases.values())


class SupervisionApplication(ServiceApplication):
    """督办: cases, letters, deadlines; its notification log is supervision's outbox."""

    name = "supervision"
    conflict_retries = 50
    """Not the shared default: every letter an office issues in a year takes its number from
    one register, so letters issued at once all conflict on it and each round only one gets
    through (20 at once, or 16 from two replicas, in the tests); the scheduler's scan and the
    office's commands also meet on the same cases."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        config: SupervisionSettings | None = None,
        prefecture: str = "yanbian",
    ) -> None:
        super().__init__(env)
        self.config = config or SupervisionSettings()
        self.prefecture = prefecture
        self.index = CaseIndex(self)

    # --- reading --------------------------------------------------------------------------

    def get_case(self, case_id: UUID) -> SupervisionCase:
        try:
            case = self.repository.get(case_id)
        except AggregateNotFoundError:
            raise CaseNotFound(case_id) from None
        if not isinstance(case, SupervisionCase):  # the id of a letter register
            raise CaseNotFound(case_id)
        return case

    def audit_trail(self, case_id: UUID) -> list[HistoryEntry]:
        """Every stored event of a case with who caused it (retry bookkeeping left out)."""
        return read_history(self, case_id, skipped=frozenset({"RequestRemembered"}))

    def list_cases(
        self, where: CaseFilter, page: int, page_size: int, sort: str = "opened"
    ) -> tuple[list[SupervisionCase], int]:
        """One page of the cases that pass the filter in the order `sort` names (see
        CASE_ORDERS), and how many pass."""
        found = sorted((c for c in self.index.cases() if where.admits(c)), key=CASE_ORDERS[sort])
        start = (page - 1) * page_size
        return found[start : start + page_size], len(found)

    # --- commands ---------------------------------------------------------------------------

    async def issue_letter(
        self,
        case_id: UUID,
        requirements: str,
        deadline: date | None,
        working_days: int | None,
        issued_at: datetime,
        now: datetime,
        guard: Guard,
        idempotency: Command = None,
    ) -> tuple[SupervisionCase, Letter, bool]:
        """Issue a letter with the next number of the office's register for its year."""

        def issue(case: SupervisionCase) -> tuple[list[Aggregate], str]:
            letter_day = china_day(issued_at)
            due = deadline
            if due is None:
                assert working_days is not None
                due = add_working_days(letter_day, working_days)
            case.check_letter(due, requirements, issued_at, now)
            register = self._letter_register(case.office, letter_day.year)
            register.assign(case.id, letter_day)
            sequence = register.last_sequence
            case.issue_letter(
                letter_number(self.config.letter_prefix(case.office), letter_day.year, sequence),
                letter_day.year,
                sequence,
                due,
                requirements,
                issued_at,
                now,
            )
            return [register], str(sequence)

        case, answer, created = await self._change(case_id, issue, guard, idempotency)
        letter = next(letter for letter in case.letters if str(letter.sequence) == answer)
        return case, letter, created

    def _letter_register(self, office: str, year: int) -> LetterRegister:
        try:
            register: LetterRegister = self.repository.get(LetterRegister.create_id(office, year))
        except AggregateNotFoundError:
            register = LetterRegister(office=office, year=year)
        return register

    async def acknowledge(
        self,
        case_id: UUID,
        acknowledged_at: datetime,
        now: datetime,
        guard: Guard,
        idempotency: Command = None,
    ) -> SupervisionCase:
        """签收: the department signs for the letter."""
        return await self._step(
            case_id,
            "acknowledgement",
            lambda case: case.acknowledge(acknowledged_at, now),
            guard,
            idempotency,
        )

    async def report_progress(
        self,
        case_id: UUID,
        note: str,
        reported_at: datetime,
        now: datetime,
        guard: Guard,
        idempotency: Command = None,
    ) -> SupervisionCase:
        """报告办理进展: the department reports how far it got."""
        return await self._step(
            case_id,
            "progress",
            lambda case: case.report_progress(note, reported_at, now),
            guard,
            idempotency,
        )

    async def record_follow_up(
        self,
        case_id: UUID,
        kind: str,
        held_at: datetime,
        members: list[str],
        note: str,
        now: datetime,
        guard: Guard,
        idempotency: Command = None,
    ) -> SupervisionCase:
        """跟踪督办 (调研、视察、座谈): the office records a follow-up with the members who went."""
        return await self._step(
            case_id,
            "follow-up",
            lambda case: case.record_follow_up(kind, held_at, members, note, now),
            guard,
            idempotency,
        )

    async def report_completion(
        self,
        case_id: UUID,
        note: str,
        reported_at: datetime,
        now: datetime,
        guard: Guard,
        idempotency: Command = None,
    ) -> SupervisionCase:
        """报告办结: the department reports the work done."""
        return await self._step(
            case_id,
            "completion",
            lambda case: case.report_completion(note, reported_at, now),
            guard,
            idempotency,
        )

    async def verify(
        self,
        case_id: UUID,
        verified_at: datetime,
        now: datetime,
        guard: Guard,
        idempotency: Command = None,
    ) -> SupervisionCase:
        """验收: the office accepts the department's work; its issues become resolved."""
        return await self._step(
            case_id, "verification", lambda case: case.verify(verified_at, now), guard, idempotency
        )

    async def send_back(
        self,
        case_id: UUID,
        reason: str,
        deadline: date,
        reopened_at: datetime,
        now: datetime,
        guard: Guard,
        idempotency: Command = None,
    ) -> SupervisionCase:
        """退回重办: the office sends the work back with a reason and a new deadline."""
        return await self._step(
            case_id,
            "send-back",
            lambda case: case.send_back(reason, deadline, reopened_at, now),
            guard,
            idempotency,
        )

    async def _step(
        self,
        case_id: UUID,
        step: str,
        act: Callable[[SupervisionCase], None],
        guard: Guard,
        idempotency: Command,
    ) -> SupervisionCase:
        """A step that changes the case alone; a retried request is answered with the step's
        name (what its remembered requests have always held)."""

        def command(case: SupervisionCase) -> tuple[list[Aggregate], str]:
            act(case)
            return [], step

        case, _, _ = await self._change(case_id, command, guard, idempotency)
        return case

    async def _change(
        self,
        case_id: UUID,
        command: Callable[[SupervisionCase], tuple[list[Aggregate], str]],
        guard: Guard,
        idempotency: Command = None,
    ) -> tuple[SupervisionCase, str, bool]:
        """Run a command on the case and save what it changed, atomically, retrying on a
        conflict with a concurrent change. With `idempotency` (key, fingerprint), a request
        seen before returns its first answer and changes nothing.

        Returns the case, the command's answer and whether this request changed it.
        """

        def decide() -> Decision[tuple[SupervisionCase, str, bool]]:
            case = self.get_case(case_id)
            guard(case)
            if idempotency is not None and (earlier := case.requests.get(idempotency[0])):
                if earlier.fingerprint != idempotency[1]:
                    raise IdempotencyConflict(idempotency[0])
                return (case, earlier.answer, False), []
            others, answer = command(case)
            if idempotency is not None:
                case.remember(idempotency[0], idempotency[1], answer)
            return (case, answer, True), [*others, case]

        # A concurrent change of the case or of the letter register: decide again.
        return await decide_and_save(self.group_commit.save, decide, self.conflict_retries)

    # --- the scheduler ----------------------------------------------------------------------

    def supervise(self, now: datetime) -> int:
        """Record every reminder, 催办, overdue and 提级督办 due by `now`, and retract those the
        records disprove (stored before commands retracted them); returns how many cases
        changed. Safe beside other replicas: both may decide the same step, only one
        save wins, and the loser reloads and finds it done."""
        changed = 0
        for known in self.index.cases():
            if not known.needs_supervision(now, self._ladder(known)):
                continue
            step = functools.partial(self._supervise, known.id, now)
            try:
                if retry_on_conflict_sync(step, self.conflict_retries):
                    changed += 1
            except IntegrityError:
                continue  # still contended: the next scan decides it again
        return changed

    def _supervise(self, case_id: UUID, now: datetime) -> bool:
        """The steps due on one case by `now`, stored; False if none was."""
        case = self.get_case(case_id)
        case.supervise(now, self._ladder(case))
        if not case.pending_events:
            return False
        # Reminders, 催办, overdue and 提级督办 are the scheduler's doing.
        stamp(case.pending_events, system_actor("scheduler", case.office))
        self.save(case)
        return True

    def _ladder(self, case: SupervisionCase) -> Ladder:
        return self.config.ladder(case.office, self.prefecture)
