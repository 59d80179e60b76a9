"""Supervision's application (督办服务): cases opened from upstream events, commands, the
deadline scheduler's scan, and the list of cases."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.supervision.domain import (
    Ladder,
    Letter,
    LetterRegister,
    SupervisionCase,
    case_id_for_outcome,
    case_id_for_referral,
    china_day,
    letter_number,
)
from services.supervision.settings import SupervisionSettings
from services.supervision.workdays import add_working_days
from shared.audit import HistoryEntry, read_history, stamp, system_actor
from shared.contracts import (
    CaseAcknowledgedV1,
    CaseEscalatedV1,
    CaseOpenedV1,
    CaseOverdueV1,
    CaseReopenedV1,
    CaseStepsRetractedV1,
    CaseVerifiedV1,
    CompletionReportedV1,
    Contract,
    FollowUpRecordedV1,
    IssueCallbackRecordedV1,
    IssueScreenedV1,
    LetterIssuedV1,
    MeetingConcludedV1,
    ProgressReportedV1,
    RetractedStep,
)
from shared.eventstore import ServiceApplication
from shared.process import PolicyRefused, Upstream

Guard = Callable[[SupervisionCase], None]
"""Raises if the caller may not touch this case (the API's access rule)."""


class CaseNotFound(LookupError):
    pass


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was used before on this case for a different request."""


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

    # --- opening cases from upstream events -------------------------------------------------

    def open_cases(self, upstream: Upstream, processing: ProcessingEvent[UUID]) -> None:
        """The policy over MEETINGS and INTAKE: each outcome and each `refer` opens one case."""
        event = upstream.event
        if isinstance(event, MeetingConcludedV1):
            if not event.offices:
                raise PolicyRefused(f"meeting {event.meeting_id} names no office")
            for outcome in event.outcomes:
                self._open(
                    processing,
                    case_id_for_outcome(outcome.outcome_id),
                    office=event.offices[0],
                    origin="outcome",
                    meeting_id=event.meeting_id,
                    outcome_id=outcome.outcome_id,
                    issue_ids=list(outcome.issue_ids),
                    department=outcome.department,
                    deadline=outcome.deadline,
                    requirements=outcome.recommendation,
                    opened_at=event.concluded_at,
                    meeting_title=event.title,
                )
        elif isinstance(event, IssueCallbackRecordedV1) and event.satisfaction == "unsatisfied":
            self._send_back_after_callback(processing, event)
        elif isinstance(event, IssueScreenedV1) and event.decision == "refer":
            if not event.department:
                raise PolicyRefused(f"referral of issue {event.issue_id} names no department")
            deadline = event.deadline or add_working_days(
                china_day(event.screened_at), self.config.referral_working_days, approximate=True
            )
            self._open(
                processing,
                case_id_for_referral(event.issue_id, upstream.envelope.id),
                office=event.office,
                origin="referral",
                meeting_id=None,
                outcome_id=None,
                issue_ids=[event.issue_id],
                department=event.department,
                deadline=deadline,
                requirements=event.title,
                opened_at=event.screened_at,
            )

    def _send_back_after_callback(
        self, processing: ProcessingEvent[UUID], event: IssueCallbackRecordedV1
    ) -> None:
        """The cases that had resolved an issue its resident is unsatisfied with go back."""
        deadline = add_working_days(
            china_day(event.called_at), self.config.referral_working_days, approximate=True
        )
        for case_id in event.reopened_cases:
            try:
                case = self.get_case(case_id)
            except CaseNotFound:
                continue
            reason = "居民回访不满意 / the resident was not satisfied when called back"
            if case.reopen_after_callback(reason, deadline, event.called_at, self._ladder(case)):
                processing.collect_events(case)

    def _open(self, processing: ProcessingEvent[UUID], case_id: UUID, **fields: Any) -> None:
        # A conclusion received again (a restarted relay publishes it at a new position) finds
        # its cases stored; a replica opening the same case at once collides on the id.
        if case_id in self.repository or case_id in {e.originator_id for e in processing.events}:
            return
        processing.collect_events(SupervisionCase(id=case_id, **fields))

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
        idempotency: tuple[str, str] | None = None,
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

        case, answer, created = await self.change(case_id, issue, guard, idempotency)
        letter = next(letter for letter in case.letters if str(letter.sequence) == answer)
        return case, letter, created

    def _letter_register(self, office: str, year: int) -> LetterRegister:
        try:
            register: LetterRegister = self.repository.get(LetterRegister.create_id(office, year))
        except AggregateNotFoundError:
            register = LetterRegister(office=office, year=year)
        return register

    async def change(
        self,
        case_id: UUID,
        command: Callable[[SupervisionCase], tuple[list[Aggregate], str]],
        guard: Guard,
        idempotency: tuple[str, str] | None = None,
    ) -> tuple[SupervisionCase, str, bool]:
        """Run a command on the case and save what it changed, atomically, retrying on a
        conflict with a concurrent change. With `idempotency` (key, fingerprint), a request
        seen before returns its first answer and changes nothing.

        Returns the case, the command's answer and whether this request changed it.
        """
        conflicts = 0
        while True:
            case = await asyncio.to_thread(self.get_case, case_id)
            guard(case)
            if idempotency is not None and (earlier := case.requests.get(idempotency[0])):
                if earlier.fingerprint != idempotency[1]:
                    raise IdempotencyConflict(idempotency[0])
                return case, earlier.answer, False
            others, answer = await asyncio.to_thread(command, case)
            if idempotency is not None:
                case.remember(idempotency[0], idempotency[1], answer)
            try:
                await self.group_commit.save(*others, case)
            except IntegrityError:
                # A concurrent change of the case or of the letter register: decide again.
                conflicts += 1
                if conflicts > self.conflict_retries:
                    raise
                continue
            return case, answer, True

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
            for _ in range(self.conflict_retries + 1):
                case = self.get_case(known.id)
                case.supervise(now, self._ladder(case))
                if not case.pending_events:
                    break
                # Reminders, 催办, overdue and 提级督办 are the scheduler's doing.
                stamp(case.pending_events, system_actor("scheduler", case.office))
                try:
                    self.save(case)
                except IntegrityError:
                    continue
                changed += 1
                break
        return changed

    def _ladder(self, case: SupervisionCase) -> Ladder:
        return self.config.ladder(case.office, self.prefecture)


def to_contract(domain_event: Any) -> tuple[str, Contract] | None:
    """What supervision publishes: each stored case event as its versioned contract."""
    e = domain_event
    if isinstance(e, SupervisionCase.Opened):
        return e.office, CaseOpenedV1(
            case_id=e.originator_id,
            office=e.office,
            origin=e.origin,
            meeting_id=e.meeting_id,
            outcome_id=e.outcome_id,
            issue_ids=e.issue_ids,
            department=e.department,
            deadline=e.deadline,
            requirements=e.requirements,
            opened_at=e.opened_at,
            # Cases opened before the meeting's title was kept have no such attribute.
            meeting_title=getattr(e, "meeting_title", None),
        )
    contract: Contract
    if isinstance(e, SupervisionCase.LetterIssued):
        contract = LetterIssuedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            number=e.number,
            year=e.year,
            sequence=e.sequence,
            deadline=e.deadline,
            requirements=e.requirements,
            issued_at=e.issued_at,
        )
    elif isinstance(e, SupervisionCase.Acknowledged):
        contract = CaseAcknowledgedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            acknowledged_at=e.acknowledged_at,
        )
    elif isinstance(e, SupervisionCase.ProgressReported):
        contract = ProgressReportedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            note=e.note,
            reported_at=e.reported_at,
        )
    elif isinstance(e, SupervisionCase.FollowUpRecorded):
        contract = FollowUpRecordedV1(
            case_id=e.originator_id,
            office=e.office,
            kind=e.kind,
            held_at=e.held_at,
            members=e.members,
            note=e.note,
        )
    elif isinstance(e, SupervisionCase.CompletionReported):
        contract = CompletionReportedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            note=e.note,
            reported_at=e.reported_at,
        )
    elif isinstance(e, SupervisionCase.Verified):
        contract = CaseVerifiedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            issue_ids=e.issue_ids,
            verified_at=e.verified_at,
        )
    elif isinstance(e, SupervisionCase.Reopened):
        contract = CaseReopenedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            reason=e.reason,
            deadline=e.deadline,
            reopened_at=e.reopened_at,
            cause=getattr(e, "cause", "office"),
        )
    elif isinstance(e, SupervisionCase.BecameOverdue):
        contract = CaseOverdueV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            deadline=e.deadline,
            issue_ids=e.issue_ids,
            overdue_at=e.overdue_at,
        )
    elif isinstance(e, SupervisionCase.Escalated):
        contract = CaseEscalatedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            step=e.step,
            to_office=e.to_office,
            escalated_at=e.escalated_at,
            deadline=e.deadline,
        )
    elif isinstance(e, SupervisionCase.StepsRetracted):
        contract = CaseStepsRetractedV1(
            case_id=e.originator_id,
            office=e.office,
            department=e.department,
            issue_ids=e.issue_ids,
            steps=[RetractedStep(step=step, deadline=d, at=at) for step, d, at in e.steps],
            retracted_at=e.retracted_at,
        )
    else:
        return None
    return e.office, contract
