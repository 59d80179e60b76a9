"""The records of the 2020 scenario (情景记录) and the working-day calendar they are dated by.

Each record is what an office types in through docs/API.md: an activity, an issue and its
screening, a meeting, a supervision case with its steps. `demo.scenario.generate` makes
them; `demo.load` sends them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from shared.clock import CHINA, add_working_days, is_working_day

YEAR = 2020

Kind = Literal["thematic", "onsite", "written"]
CaseAction = Literal[
    "letters",
    "acknowledgement",
    "progress",
    "follow-ups",
    "completion",
    "send-back",
    "verification",
]


@dataclass(frozen=True)
class Figures:
    """The yearly figures the projections compute (docs/API.md `Figures`), for one year."""

    outreach_activities: int
    member_participations: int
    issues_collected: int
    issues_resolved: int
    thematic: int
    onsite: int
    written: int
    key_problems_resolved: int
    reports_forwarded: int
    letters_issued: int
    cases_overdue: int
    issues_called_back: int = 0
    """回访: not in the report; what the scenario's follow-up calls must count to."""
    callbacks_reached: int = 0
    callbacks_satisfied: int = 0


# --- the scenario's records ------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """政协委员 of one office."""

    name: str
    office: str


@dataclass(frozen=True)
class ActivityGroup:
    """委员活动小组 assigned to one community."""

    name: str
    community: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Person:
    """Reference data of one office's meetings: a member, an expert or a department head."""

    person_id: str
    office: str
    name: str
    kind: Literal["member", "expert", "department_head"]
    department: str | None = None


@dataclass(frozen=True)
class Correction:
    members: tuple[str, ...]
    reason: str
    corrected_at: datetime


@dataclass(frozen=True)
class Activity:
    """委员进基层活动: one Thursday afternoon (一期) with the members present (人次)."""

    key: str
    office: str
    held_at: datetime
    community: str
    liaison_station: str
    activity_group: str
    members: tuple[str, ...]
    note: str
    corrections: tuple[Correction, ...] = ()

    @property
    def final_members(self) -> tuple[str, ...]:
        return self.corrections[-1].members if self.corrections else self.members


@dataclass(frozen=True)
class Screening:
    """筛选议题: the leading group's one decision."""

    decision: Literal["topic", "report", "refer", "answered", "duplicate", "rejected"]
    screened_at: datetime
    report_title: str | None = None
    department: str | None = None
    deadline: date | None = None
    answer: str | None = None
    duplicate_of: str | None = None
    """The key of the original issue."""
    reason: str | None = None


@dataclass(frozen=True)
class Issue:
    """问题和建议 as a clerk records it, with how the leading group screened it."""

    key: str
    office: str
    title: str
    description: str
    category: str
    submitted_at: datetime
    source: Literal["outreach", "liaison_station", "visit", "online", "hotline"]
    community: str | None
    liaison_station: str | None
    activity: str | None
    """The key of the outreach activity it came from."""
    recorded_by: str | None
    key_problem: bool
    reporter_name: str | None
    reporter_phone: str | None
    screening: Screening | None
    closed_at: datetime | None = None
    callback: Callback | None = None


@dataclass(frozen=True)
class Callback:
    """回访: the office calls the resident back after the issue was resolved."""

    called_at: datetime
    reached: bool
    satisfaction: Literal["satisfied", "basically_satisfied", "unsatisfied"] | None
    note: str


@dataclass(frozen=True)
class Invitation:
    person_id: str
    role: str
    accepted: bool


@dataclass(frozen=True)
class Opinion:
    person_id: str
    opinion: str
    received_at: datetime


@dataclass(frozen=True)
class Outcome:
    """协商成果: issues (keys) it answers, the recommendation, the department, the deadline."""

    issues: tuple[str, ...]
    recommendation: str
    department: str
    deadline: date


@dataclass(frozen=True)
class Postponement:
    starts_at: datetime
    ends_at: datetime
    reason: str
    postponed_at: datetime


@dataclass(frozen=True)
class Cancellation:
    reason: str
    cancelled_at: datetime


@dataclass(frozen=True)
class Meeting:
    """“有事来商量”协商会议: planned, maybe postponed, held (or closed) and concluded."""

    key: str
    office: str
    joint_offices: tuple[str, ...]
    kind: Kind
    title: str
    theme: str
    starts_at: datetime
    ends_at: datetime
    venue: str | None
    submission_deadline: datetime | None
    planned_at: datetime
    postponement: Postponement | None = None
    cancellation: Cancellation | None = None
    invitations: tuple[Invitation, ...] = ()
    topics: tuple[str, ...] = ()
    topics_added_at: tuple[datetime, ...] = ()
    """When each topic was put on the agenda, in the order of `topics`."""
    held_at: datetime | None = None
    """Thematic and on-site meetings: when it was held."""
    attendance: tuple[str, ...] = ()
    opinions: tuple[Opinion, ...] = ()
    closed_at: datetime | None = None
    """Written consultation: when it was closed, which counts as held."""
    concluded_at: datetime | None = None
    outcomes: tuple[Outcome, ...] = ()

    @property
    def counted_at(self) -> datetime | None:
        """When it counts as held: held, or for a written consultation closed."""
        return self.closed_at if self.kind == "written" else self.held_at


@dataclass(frozen=True)
class CaseStep:
    """One write on a supervision case, in order; `body` holds what it sends besides times."""

    action: CaseAction
    at: datetime
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> str:
        department_actions = ("acknowledgement", "progress", "completion")
        return "department" if self.action in department_actions else "supervisor"


@dataclass(frozen=True)
class Case:
    """督办件: opened by supervision from a `refer` screening or a meeting outcome."""

    key: str
    office: str
    origin: Literal["referral", "outcome"]
    issues: tuple[str, ...]
    meeting: str | None
    outcome: int | None
    department: str
    deadline: date
    steps: tuple[CaseStep, ...]

    @property
    def verified(self) -> bool:
        return any(step.action == "verification" for step in self.steps)


@dataclass(frozen=True)
class Scenario:
    seed: int
    communities: tuple[tuple[str, str], ...]
    """(community, street or town)."""
    liaison_stations: tuple[str, ...]
    activity_groups: tuple[ActivityGroup, ...]
    members: tuple[Member, ...]
    people: tuple[Person, ...]
    departments: tuple[str, ...]
    venues: tuple[tuple[str, str], ...]
    activities: tuple[Activity, ...]
    issues: tuple[Issue, ...]
    meetings: tuple[Meeting, ...]
    cases: tuple[Case, ...]
    expected: Figures

    def to_json(self) -> str:
        """The whole scenario as canonical JSON: equal seeds give equal bytes."""
        return json.dumps(
            dataclasses.asdict(self), ensure_ascii=False, sort_keys=True, default=str, indent=1
        )


# --- times ----------------------------------------------------------------------------------


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CHINA)


def workday_from(day: date) -> date:
    """The day itself if it is a working day, else the next one: deadlines fall on those."""
    return day if is_working_day(day) else add_working_days(day, 1)


def activity_days() -> list[date]:
    """Thursdays from June on that are not public holidays (端午 6-25, 国庆 10-1 and 10-8)."""
    day = date(YEAR, 6, 4)
    days = []
    while day.year == YEAR:
        if is_working_day(day):
            days.append(day)
        day += timedelta(days=7)
    return days


def in_year(moment: datetime, year: int = YEAR) -> bool:
    return moment.astimezone(CHINA).year == year
