"""What the read side's API answers (应答): pydantic models of the issue status, the yearly
statistics and their breakdowns and drill-downs, no rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class StepActor(BaseModel):
    """Who took a step (the token's subject and the role it acted in; `system:…` for a
    service's own processes)."""

    subject: str
    role: str | None = None


class TimelineStep(BaseModel):
    at: str
    step: str
    label: str
    stream: str
    event_id: str
    meeting_id: str | None = None
    case_id: str | None = None
    letter_number: str | None = None
    detail: str | None = None
    department: str | None = None
    by: StepActor | None = None
    """None for events published before auditing."""


class IssueRow(BaseModel):
    issue_id: str
    office: str
    title: str
    category: str
    community: str | None = None
    liaison_station: str | None = None
    source: str | None = None
    key_problem: bool
    status: str
    status_label: str
    departments: list[str]
    submitted_at: str
    year: int
    updated_at: str


class IssueStatus(IssueRow):
    as_of: str | None = None
    timeline: list[TimelineStep]


class IssuePage(BaseModel):
    items: list[IssueRow]
    total: int
    page: int
    page_size: int


class MeetingsHeld(BaseModel):
    thematic: int
    onsite: int
    written: int


class Figures(BaseModel):
    office: str
    outreach_activities: int
    member_participations: int
    issues_collected: int
    issues_resolved: int
    meetings_held: MeetingsHeld
    key_problems_resolved: int
    reports_forwarded: int
    letters_issued: int
    cases_overdue: int
    median_days_to_resolution: float | None
    cases_reopened_by_callback: int = 0
    """督办件 sent back in the year because a resident was unsatisfied when called back
    (回访不满意退回), each case once a year; each went up to the prefecture at once."""
    issues_called_back: int = 0
    """回访: issues resolved in the year whose resident was called back afterwards."""
    callbacks_reached: int = 0
    callbacks_satisfied: int = 0
    """Reached and satisfied or basically satisfied (满意 + 基本满意)."""
    satisfaction_rate: float | None = None
    """callbacks_satisfied / callbacks_reached (满意率)."""
    callback_coverage: float | None = None
    """issues_called_back / issues_resolved (回访率)."""


class YearlyStatistics(BaseModel):
    year: int
    as_of: str | None
    offices: list[Figures]
    total: Figures


class Breakdown(BaseModel):
    year: int
    office: str | None
    as_of: str | None
    by_month: dict[str, int]
    """"1" to "12": issues submitted in that month (China Standard Time)."""
    by_category: dict[str, int]
    by_community: dict[str, int]
    by_status: dict[str, int]
    overdue_by_department: dict[str, int]
    links: dict[str, dict[str, str]]
    """Per breakdown and bucket: the `GET /issues` list of the issues it counts."""


class DrillDown(BaseModel):
    year: int
    figure: str
    office: str | None
    as_of: str | None
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


class YearsWithData(BaseModel):
    years: list[int]
    """Latest first; the dashboard opens on the first."""
