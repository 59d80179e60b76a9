"""Supervision's domain (督办): pure aggregates, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from shared.clock import CHINA, add_working_days, china_day, end_of_day, start_of_day

CLOCK_SKEW = timedelta(minutes=5)

OPENED = "opened"
LETTER_ISSUED = "letter_issued"
ACKNOWLEDGED = "acknowledged"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
VERIFIED = "verified"
REOPENED = "reopened"
STATUS_LABELS = {
    OPENED: "已立项",
    LETTER_ISSUED: "已发函",
    ACKNOWLEDGED: "已签收",
    IN_PROGRESS: "办理中",
    COMPLETED: "已报告办结",
    VERIFIED: "已验收",
    REOPENED: "已退回重办",
}
_EXCHANGE = {
    "opened",
    "letter_issued",
    "acknowledged",
    "progress_reported",
    "completion_reported",
    "verified",
    "reopened",
}
FOLLOW_UP_KINDS = {"research": "调研", "inspection": "视察", "symposium": "座谈"}


class CaseRuleBroken(ValueError):
    """A command the case's rules refuse because of one field's value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class IllegalTransition(Exception):
    """A command the case cannot take in its current state."""

    def __init__(self, action: str, status: str) -> None:
        chinese, english = action.split(" / ")
        super().__init__(
            f"督办件当前状态为「{STATUS_LABELS[status]}」，不能{chinese} / the case is "
            f"{status}: cannot {english}"
        )
        self.action = action
        self.status = status


def case_id_for_outcome(outcome_id: UUID) -> UUID:
    """One case per meeting outcome: a redelivered conclusion collides instead of duplicating."""
    return uuid5(NAMESPACE_URL, f"shangliang:supervision:outcome:{outcome_id}")


def case_id_for_referral(issue_id: UUID, screening_event_id: str) -> UUID:
    """One case per `refer` screening: the same event again collides, a re-referral after the
    issue was reopened is another screening event and opens another case."""
    return uuid5(NAMESPACE_URL, f"shangliang:supervision:referral:{issue_id}:{screening_event_id}")


def letter_number(prefix: str, year: int, sequence: int) -> str:
    """The office's own letter number, e.g. 延州政协督〔2020〕3号."""
    return f"{prefix}〔{year}〕{sequence}号"


def _check_time(field: str, moment: datetime, now: datetime, not_before: datetime | None) -> None:
    if moment.tzinfo is None:
        raise CaseRuleBroken(field, "需要时区 / a time zone is required")
    if moment > now + CLOCK_SKEW:
        raise CaseRuleBroken(field, "时间不能在将来 / the time is in the future")
    if not_before is not None and moment < not_before:
        raise CaseRuleBroken(
            field,
            f"时间早于上一步（{not_before.astimezone(CHINA):%Y-%m-%d %H:%M}）/ the time is before "
            f"the step it follows ({not_before.isoformat()})",
        )


def _check_text(field: str, text: str) -> str:
    if not text.strip():
        raise CaseRuleBroken(field, "不能为空 / must not be blank")
    return text.strip()


class LetterRegister(Aggregate):
    """督办函登记簿: an office's letter numbers of one year, each given once, in date order.

    Numbers follow the letters' dates: the next number goes to a letter dated on or after
    the last numbered one; a letter dated earlier is refused (it would need a number already
    given). Two letters issued at once load the same version of the register; only one save
    wins and the other is retried with the next number, so a number is never reused or
    skipped.
    """

    @staticmethod
    def create_id(office: str, year: int) -> UUID:
        return uuid5(NAMESPACE_URL, f"shangliang:supervision:letters:{office}:{year}")

    @event("Started")
    def __init__(self, office: str, year: int) -> None:
        self.office = office
        self.year = year
        self.last_sequence = 0
        self.last_day: date | None = None

    def assign(self, case_id: UUID, day: date) -> None:
        """Give the next number to a letter dated `day` (China's calendar day)."""
        if self.last_day is not None and day < self.last_day:
            raise CaseRuleBroken(
                "issued_at",
                f"督办函按日期顺序编号：本年度第{self.last_sequence}号督办函已于"
                f"{self.last_day:%Y-%m-%d}发出，不能再发日期更早的督办函 / letter numbers follow "
                f"their dates: number {self.last_sequence} of {self.year} is dated "
                f"{self.last_day.isoformat()}, a letter dated earlier cannot take a later number",
            )
        self._number_assigned(case_id=case_id, day=day)

    @event("NumberAssigned")
    def _number_assigned(self, case_id: UUID, day: date | None = None) -> None:
        """`day` is None in numbers given before letters were numbered in date order."""
        self.last_sequence += 1
        if day is not None:
            self.last_day = day


@dataclass(frozen=True)
class Letter:
    """督办函."""

    sequence: int
    number: str
    year: int
    deadline: date
    requirements: str
    issued_at: datetime


@dataclass(frozen=True)
class Report:
    """办理进展 or 办结报告 from the department."""

    note: str
    reported_at: datetime


@dataclass(frozen=True)
class FollowUp:
    """跟踪督办: 调研 / 视察 / 座谈."""

    kind: str
    held_at: datetime
    members: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Step:
    """One line of the case's history."""

    event: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class LadderStep:
    """A step of the deadline ladder the scheduler recorded: reminder, urge (催办), overdue
    (逾期) or escalate (提级督办), for one deadline, dated when it fell due."""

    step: str
    deadline: date
    at: datetime


@dataclass(frozen=True)
class DeadlinePeriod:
    """A deadline and the moment it was set (the case opened, a letter, a send-back): it
    governs the ladder from then until the next one is set."""

    deadline: date
    set_at: datetime


@dataclass(frozen=True)
class RememberedRequest:
    """A write sent with an Idempotency-Key: what it asked and what it answered."""

    fingerprint: str
    answer: str


@dataclass(frozen=True)
class Ladder:
    """An office's escalation ladder (督办升级): reminder, 催办 at the deadline, 提级督办."""

    reminder_working_days: int = 3
    escalate_after_working_days: int = 5
    escalate_to: str | None = None
    """The prefecture office; None for the prefecture's own cases (nothing is above it)."""


class SupervisionCase(Aggregate):
    """督办件: one recommendation or referral followed until the department's work is verified."""

    id: UUID  # given on opening: see case_id_for_outcome, case_id_for_referral

    @event("Opened")
    def __init__(
        self,
        office: str,
        origin: str,
        meeting_id: UUID | None,
        outcome_id: UUID | None,
        issue_ids: list[UUID],
        department: str,
        deadline: date,
        requirements: str,
        opened_at: datetime,
        meeting_title: str | None = None,
    ) -> None:
        """`meeting_title` names an outcome's meeting in its letters (None for a referral,
        and in cases opened before it was kept); a referral's requirements are the issue's
        title."""
        self.office = office
        self.origin = origin
        self.meeting_id = meeting_id
        self.meeting_title = meeting_title
        self.outcome_id = outcome_id
        self.issue_ids = list(issue_ids)
        self.department = department
        self.deadline = deadline
        self.requirements = requirements
        self.opened_at = opened_at
        self.status = OPENED
        self.letters: list[Letter] = []
        self.acknowledged_at: datetime | None = None
        self.progress: list[Report] = []
        self.follow_ups: list[FollowUp] = []
        self.completion: Report | None = None
        self.verified_at: datetime | None = None
        self.periods: list[DeadlinePeriod] = [DeadlinePeriod(deadline, opened_at)]
        self.completions: list[tuple[datetime, datetime | None]] = []
        """(reported, withdrawn by a send-back or None): when the work stood reported done."""
        self.ladder_steps: list[LadderStep] = []
        """The ladder's steps recorded and not retracted."""
        self.requests: dict[str, RememberedRequest] = {}
        self.history: list[Step] = [Step("opened", opened_at, requirements)]

    @property
    def overdue(self) -> bool:
        """Past its current deadline without completion in time (逾期)."""
        return self.deadline in self.overdue_deadlines

    @property
    def overdue_deadlines(self) -> list[date]:
        return [s.deadline for s in self.ladder_steps if s.step == "overdue"]

    @property
    def escalations(self) -> list[tuple[str, date, datetime]]:
        return [(s.step, s.deadline, s.at) for s in self.ladder_steps if s.step != "overdue"]

    @property
    def last_step_at(self) -> datetime:
        """When the last step of the office's and the department's exchange happened; follow-ups
        and the scheduler's steps run beside it and do not count."""
        return max(step.at for step in self.history if step.event in _EXCHANGE)

    # --- the office and the department ----------------------------------------------------

    def issue_letter(
        self,
        number: str,
        year: int,
        sequence: int,
        deadline: date,
        requirements: str,
        issued_at: datetime,
        now: datetime,
    ) -> None:
        """Issue a supervision letter (发督办函) with the department's deadline."""
        self.check_letter(deadline, requirements, issued_at, now)
        self._letter_issued(
            office=self.office,
            department=self.department,
            number=number,
            year=year,
            sequence=sequence,
            deadline=deadline,
            requirements=requirements.strip(),
            issued_at=issued_at,
        )
        self.retract_disproved()

    def check_letter(
        self, deadline: date, requirements: str, issued_at: datetime, now: datetime
    ) -> None:
        """Whether a letter may be issued, checked before a number is taken for it."""
        if self.status not in (OPENED, REOPENED):
            raise IllegalTransition("发督办函 / issue a letter", self.status)
        _check_text("requirements", requirements)
        _check_time("issued_at", issued_at, now, self.last_step_at)
        if deadline < china_day(issued_at):
            raise CaseRuleBroken(
                "deadline", "截止日期早于发函日期 / the deadline is before the letter"
            )

    @event("LetterIssued")
    def _letter_issued(
        self,
        office: str,
        department: str,
        number: str,
        year: int,
        sequence: int,
        deadline: date,
        requirements: str,
        issued_at: datetime,
    ) -> None:
        self.letters.append(Letter(sequence, number, year, deadline, requirements, issued_at))
        self.deadline = deadline
        self.periods.append(DeadlinePeriod(deadline, issued_at))
        self.status = LETTER_ISSUED
        self.history.append(Step("letter_issued", issued_at, number))

    def acknowledge(self, acknowledged_at: datetime, now: datetime) -> None:
        """The department signs for the letter (签收)."""
        if self.status != LETTER_ISSUED:
            raise IllegalTransition("签收 / acknowledge", self.status)
        _check_time("acknowledged_at", acknowledged_at, now, self.last_step_at)
        self._acknowledged(
            office=self.office, department=self.department, acknowledged_at=acknowledged_at
        )

    @event("Acknowledged")
    def _acknowledged(self, office: str, department: str, acknowledged_at: datetime) -> None:
        self.acknowledged_at = acknowledged_at
        self.status = ACKNOWLEDGED
        self.history.append(Step("acknowledged", acknowledged_at))

    def report_progress(self, note: str, reported_at: datetime, now: datetime) -> None:
        """The department reports how far it got (报告办理进展); any number of times."""
        if self.status not in (ACKNOWLEDGED, IN_PROGRESS, REOPENED):
            raise IllegalTransition("报告进展 / report progress", self.status)
        note = _check_text("note", note)
        _check_time("reported_at", reported_at, now, self.last_step_at)
        self._progress_reported(
            office=self.office, department=self.department, note=note, reported_at=reported_at
        )

    @event("ProgressReported")
    def _progress_reported(
        self, office: str, department: str, note: str, reported_at: datetime
    ) -> None:
        self.progress.append(Report(note, reported_at))
        self.status = IN_PROGRESS
        self.history.append(Step("progress_reported", reported_at, note))

    def record_follow_up(
        self, kind: str, held_at: datetime, members: list[str], note: str, now: datetime
    ) -> None:
        """The office's members follow the case up (跟踪督办: 调研、视察、座谈)."""
        if self.status in (OPENED, VERIFIED):
            raise IllegalTransition("记录跟踪督办 / record a follow-up", self.status)
        if kind not in FOLLOW_UP_KINDS:
            raise CaseRuleBroken("kind", f"未知方式 / unknown kind {kind!r}")
        names = [m.strip() for m in members if m.strip()]
        if not names:
            raise CaseRuleBroken("members", "至少一位委员 / at least one member")
        _check_time("held_at", held_at, now, self.letters[-1].issued_at)
        self._follow_up_recorded(
            office=self.office, kind=kind, held_at=held_at, members=names, note=note.strip()
        )

    @event("FollowUpRecorded")
    def _follow_up_recorded(
        self, office: str, kind: str, held_at: datetime, members: list[str], note: str
    ) -> None:
        self.follow_ups.append(FollowUp(kind, held_at, tuple(members), note))
        self.history.append(Step(f"follow_up_{kind}", held_at, note))

    def report_completion(self, note: str, reported_at: datetime, now: datetime) -> None:
        """The department reports the work done (报告办结)."""
        if self.status not in (ACKNOWLEDGED, IN_PROGRESS, REOPENED):
            raise IllegalTransition("报告办结 / report completion", self.status)
        note = _check_text("note", note)
        _check_time("reported_at", reported_at, now, self.last_step_at)
        self._completion_reported(
            office=self.office, department=self.department, note=note, reported_at=reported_at
        )
        self.retract_disproved()

    @event("CompletionReported")
    def _completion_reported(
        self, office: str, department: str, note: str, reported_at: datetime
    ) -> None:
        self.completion = Report(note, reported_at)
        self.completions.append((reported_at, None))
        self.status = COMPLETED
        self.history.append(Step("completion_reported", reported_at, note))

    def verify(self, verified_at: datetime, now: datetime) -> None:
        """The office accepts the work (验收); the covered issues are resolved."""
        if self.status != COMPLETED:
            raise IllegalTransition("验收 / verify", self.status)
        _check_time("verified_at", verified_at, now, self.last_step_at)
        self._verified(
            office=self.office,
            department=self.department,
            issue_ids=list(self.issue_ids),
            verified_at=verified_at,
        )

    @event("Verified")
    def _verified(
        self, office: str, department: str, issue_ids: list[UUID], verified_at: datetime
    ) -> None:
        self.verified_at = verified_at
        self.status = VERIFIED
        self.history.append(Step("verified", verified_at))

    def send_back(self, reason: str, deadline: date, reopened_at: datetime, now: datetime) -> None:
        """The office sends the work back (退回重办) with a reason and a new deadline."""
        if self.status != COMPLETED:
            raise IllegalTransition("退回 / send back", self.status)
        reason = _check_text("reason", reason)
        _check_time("reopened_at", reopened_at, now, self.last_step_at)
        if deadline < china_day(reopened_at):
            raise CaseRuleBroken(
                "deadline", "截止日期早于退回日期 / the deadline is before the send-back"
            )
        self._reopened(
            office=self.office,
            department=self.department,
            reason=reason,
            deadline=deadline,
            reopened_at=reopened_at,
        )
        self.retract_disproved()

    def reopen_after_callback(
        self, reason: str, deadline: date, reopened_at: datetime, ladder: Ladder
    ) -> bool:
        """回访不满意: the resident was not satisfied, so a verified case goes back to the
        department; False if the case is no longer verified (already sent back).

        The escalation counts it: work the office verified and the resident still finds
        unsolved is what 提级督办 is for, so the case goes up to the prefecture at once for
        its new deadline (the scheduler does not escalate that deadline again); the
        prefecture's own cases have nothing above them and are only sent back.
        """
        if self.status != VERIFIED:
            return False
        at = max(reopened_at, self.last_step_at)
        self._reopened(
            office=self.office,
            department=self.department,
            reason=reason,
            deadline=deadline,
            reopened_at=at,
            cause="callback",
        )
        if ladder.escalate_to is not None and ladder.escalate_to != self.office:
            self._escalated(
                office=self.office,
                department=self.department,
                step="escalate",
                deadline=deadline,
                to_office=ladder.escalate_to,
                escalated_at=at,
            )
        return True

    @event("Reopened")
    def _reopened(
        self,
        office: str,
        department: str,
        reason: str,
        deadline: date,
        reopened_at: datetime,
        cause: str = "office",
    ) -> None:
        """`cause` is "callback" for a send-back after 回访不满意 ("office" in events stored
        before it was kept, all of which the office made)."""
        self.completion = None
        self.completions[-1] = (self.completions[-1][0], reopened_at)
        self.deadline = deadline
        self.periods.append(DeadlinePeriod(deadline, reopened_at))
        self.status = REOPENED
        self.history.append(Step("reopened", reopened_at, reason))

    @event("RequestRemembered")
    def remember(self, key: str, fingerprint: str, answer: str) -> None:
        """Keep an Idempotency-Key with the change it made, in the same save."""
        self.requests[key] = RememberedRequest(fingerprint, answer)

    # --- the scheduler --------------------------------------------------------------------

    def due_steps(self, now: datetime, ladder: Ladder) -> list[tuple[str, datetime]]:
        """The deadline steps due by `now` and not yet recorded, in time order: the reminder,
        the 催办, the overdue, the 提级督办 (each once per deadline).

        They follow the dates the records carry, not the order they were typed in: each step
        is dated when it fell due, under the deadline that governed then (a deadline set
        later, even one typed in first, does not undo what fell due before it), and a step
        that fell due while the department's completion stood reported never happens.
        """
        return [(s.step, s.at) for s in self._due(now, ladder)]

    def _due(self, now: datetime, ladder: Ladder) -> list[LadderStep]:
        recorded = {(s.step, s.deadline) for s in self.ladder_steps}
        due: dict[tuple[str, date], LadderStep] = {}
        for i, period in enumerate(self.periods):
            ends = self.periods[i + 1].set_at if i + 1 < len(self.periods) else None
            for step, at in self._ladder_times(period, ladder):
                key = (step, period.deadline)
                if at > now or (ends is not None and at >= ends) or self._finished_at(at):
                    continue
                if key not in recorded and key not in due:
                    due[key] = LadderStep(step, period.deadline, at)
        return sorted(due.values(), key=lambda d: d.at)

    def disproved_steps(self) -> list[tuple[LadderStep, datetime]]:
        """Recorded steps the records now contradict, each with the moment of the record
        that shows it never fell due: a deadline set (by a back-dated letter or send-back)
        before the step's time, or a completion reported before it."""
        found = []
        for recorded in self.ladder_steps:
            governing = [p for p in self.periods if p.set_at <= recorded.at][-1]
            if governing.deadline != recorded.deadline:
                found.append((recorded, governing.set_at))
            elif (finished := self._finished_at(recorded.at)) is not None:
                found.append((recorded, finished))
        return found

    def retract_disproved(self) -> None:
        """Retract (撤销), by a new event, the steps a back-dated record shows never fell due;
        the steps stay in the case's history."""
        disproved = self.disproved_steps()
        if not disproved:
            return
        self._steps_retracted(
            office=self.office,
            department=self.department,
            issue_ids=list(self.issue_ids),
            steps=[(s.step, s.deadline, s.at) for s, _ in disproved],
            retracted_at=min(moment for _, moment in disproved),
        )

    def needs_supervision(self, now: datetime, ladder: Ladder) -> bool:
        """Whether the scheduler has a step to record or to retract."""
        return bool(self.due_steps(now, ladder) or self.disproved_steps())

    def supervise(self, now: datetime, ladder: Ladder) -> None:
        """Retract what the records disprove, then record the deadline steps that are due
        (the scheduler's command)."""
        self.retract_disproved()
        for due in self._due(now, ladder):
            if due.step == "overdue":
                self._became_overdue(
                    office=self.office,
                    department=self.department,
                    deadline=due.deadline,
                    issue_ids=list(self.issue_ids),
                    overdue_at=due.at,
                )
            else:
                self._escalated(
                    office=self.office,
                    department=self.department,
                    step=due.step,
                    deadline=due.deadline,
                    to_office=ladder.escalate_to if due.step == "escalate" else None,
                    escalated_at=due.at,
                )

    def _ladder_times(self, period: DeadlinePeriod, ladder: Ladder) -> list[tuple[str, datetime]]:
        # Working days of a year the calendar does not know yet are approximated by
        # Monday–Friday: a reminder a day off is better than none.
        deadline, set_at = period.deadline, period.set_at
        reminder = start_of_day(
            add_working_days(deadline, -ladder.reminder_working_days, approximate=True)
        )
        times = []
        if reminder >= set_at:
            times.append(("reminder", reminder))
        times.append(("urge", max(start_of_day(deadline), set_at)))
        times.append(("overdue", end_of_day(deadline)))
        if ladder.escalate_to is not None and ladder.escalate_to != self.office:
            last_day = add_working_days(
                deadline, ladder.escalate_after_working_days, approximate=True
            )
            times.append(("escalate", end_of_day(last_day)))
        return times

    def _finished_at(self, moment: datetime) -> datetime | None:
        """When the completion that stood reported at `moment` was reported, if one did."""
        for reported, withdrawn in self.completions:
            if reported <= moment and (withdrawn is None or moment < withdrawn):
                return reported
        return None

    @event("BecameOverdue")
    def _became_overdue(
        self,
        office: str,
        department: str,
        deadline: date,
        issue_ids: list[UUID],
        overdue_at: datetime,
    ) -> None:
        self.ladder_steps.append(LadderStep("overdue", deadline, overdue_at))
        self.history.append(Step("overdue", overdue_at, deadline.isoformat()))

    @event("Escalated")
    def _escalated(
        self,
        office: str,
        department: str,
        step: str,
        deadline: date,
        to_office: str | None,
        escalated_at: datetime,
    ) -> None:
        self.ladder_steps.append(LadderStep(step, deadline, escalated_at))
        self.history.append(Step("escalated", escalated_at, step))

    @event("StepsRetracted")
    def _steps_retracted(
        self,
        office: str,
        department: str,
        issue_ids: list[UUID],
        steps: list[tuple[str, date, datetime]],
        retracted_at: datetime,
    ) -> None:
        withdrawn = [LadderStep(step, deadline, at) for step, deadline, at in steps]
        self.ladder_steps = [s for s in self.ladder_steps if s not in withdrawn]
        self.history.append(
            Step("steps_retracted", retracted_at, "、".join(s.step for s in withdrawn))
        )
