"""What the read side derives from an entity's facts (推导): pure, no I/O.

An issue's combined status, a meeting's or a case's state and every entity's contribution to
the yearly counters are functions of the entity's set of facts, ordered by when they
happened, never by when they arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.projections.facts import (
    ACTIVITY,
    CASE,
    ISSUE,
    MEETING,
    TOTAL,
    Fact,
    retracted_key,
)

# Lifecycle order of an issue's steps: breaks ties between facts of the same moment.
ISSUE_RANK = {
    "submitted": 0,
    "screened": 1,
    "topic_added": 2,
    "topic_removed": 3,
    "meeting_cancelled": 3,
    "meeting_held": 4,
    "meeting_concluded": 5,
    "case_opened": 6,
    "case_steps_retracted": 7,
    "case_overdue": 7,
    "case_verified": 8,
    "resolved": 9,
    "closed": 10,
    "reopened": 11,
    "callback": 12,
}
SATISFIED = frozenset({"satisfied", "basically_satisfied"})
CALLBACK_FIGURES = ("issues_called_back", "callbacks_reached", "callbacks_satisfied")
"""回访, counted in the year of the resolution it follows: resolved issues called back,
the residents reached, and of them those (basically) satisfied."""

STATUS_LABELS = {
    "submitted": "已收集",
    "topic": "已列为协商议题",
    "report": "已报送社情民意",
    "referred": "已交办",
    "answered": "已当场答复",
    "duplicate": "重复问题",
    "rejected": "不予采纳",
    "on_agenda": "已列入协商",
    "consulted": "已协商",
    "under_supervision": "督办中",
    "overdue": "逾期",
    "resolved": "已解决",
    "closed": "已办结",
}
SCREENING_STATUS = {
    "topic": "topic",
    "report": "report",
    "refer": "referred",
    "answered": "answered",
    "duplicate": "duplicate",
    "rejected": "rejected",
}

CASE_RANK = {
    "case_opened": 0,
    "letter_issued": 1,
    "acknowledged": 2,
    "progress_reported": 3,
    "follow_up_recorded": 3,
    "case_escalated": 3,
    "completion_reported": 4,
    "case_steps_retracted": 4,
    "case_overdue": 5,
    "case_reopened": 6,
    "case_verified": 7,
}
TIMELINE_RANK: dict[str, float] = {
    **ISSUE_RANK,
    **{step: 6 + (r + 1) / 10 for step, r in CASE_RANK.items() if step not in ISSUE_RANK},
}
"""Breaks ties in an issue's timeline, cause before effect: a case's own steps come after
its opening and before its verification, which comes before the issue's resolution."""

CASE_STATUS = {
    "case_opened": "opened",
    "letter_issued": "letter_issued",
    "acknowledged": "acknowledged",
    "progress_reported": "in_progress",
    "follow_up_recorded": "in_progress",
    "case_escalated": "in_progress",
    "completion_reported": "completed",
    "case_reopened": "reopened",
    "case_verified": "verified",
}


Contribution = tuple[str, int, str]
"""(office, year, figure): one unit an entity adds to a yearly counter."""


@dataclass
class Derived:
    """An entity's derived row (None while it is not known enough to list), its counters."""

    row: dict[str, Any] | None
    counts: dict[Contribution, int] = field(default_factory=dict)
    days: dict[tuple[str, int, int], int] = field(default_factory=dict)
    """(office, year, days) → issues resolved in that year after that many days."""
    links: list[str] = field(default_factory=list)
    """Departments of an issue, offices of a meeting, issues of a case (for filters)."""

    def add(self, office: str, year: int, figure: str, n: int = 1) -> None:
        for key in ((office, year, figure), (TOTAL, year, figure)):
            self.counts[key] = self.counts.get(key, 0) + n


def in_order(facts: Iterable[Fact], rank: dict[str, int], until: str | None) -> list[Fact]:
    """The facts that happened by `until` and were not retracted, by when they happened;
    ties by lifecycle."""
    kept = standing(f for f in facts if until is None or f.at <= until)
    return sorted(kept, key=lambda f: (f.at, rank.get(f.step, 0), f.event_id))


def standing(facts: Iterable[Fact]) -> list[Fact]:
    """The facts without the deadline steps a later record retracted (督办提醒撤销).

    A retraction is dated by the record that disproves its steps, never after them, so
    whatever moment the facts are cut at, a retracted step in the cut has its retraction too.
    """
    facts = list(facts)
    retracted = {
        (f.ref_id if f.entity == ISSUE else f.entity_id, key)
        for f in facts
        if f.step == "case_steps_retracted"
        for key in f.data["retracted"]
    }
    if not retracted:
        return facts
    return [
        f
        for f in facts
        if (f.ref_id if f.entity == ISSUE else f.entity_id, retracted_key(f)) not in retracted
    ]


def _unsatisfied(f: Fact) -> bool:
    return f.step == "callback" and f.detail == "unsatisfied"


def _by_resident(f: Fact) -> bool:
    """A send-back after 回访不满意 (the office's own send-backs carry "office" or nothing)."""
    return f.data.get("cause") == "callback"


def days_between(start: str, end: str) -> int:
    """Whole calendar days in China between two fixed-width China times."""
    return max(0, (datetime.fromisoformat(end[:10]) - datetime.fromisoformat(start[:10])).days)


def derive_issue(facts: Iterable[Fact], until: str | None = None) -> Derived:
    """An issue's combined status, row and counters from its facts, as of `until`.

    The status is the furthest step reached since the last reopening (重新打开 goes back to
    已收集): closed > resolved > overdue > under supervision > consulted > on the agenda >
    the latest screening decision > submitted.
    """
    ordered = in_order(facts, ISSUE_RANK, until)
    submitted = next((f for f in ordered if f.step == "submitted"), None)
    if submitted is None:
        return Derived(None)
    last_reopen = max(
        (i for i, f in enumerate(ordered) if f.step == "reopened" or _unsatisfied(f)), default=-1
    )
    epoch = ordered[last_reopen + 1 :]
    steps = {f.step for f in epoch}
    agenda: dict[str | None, bool] = {}
    screening: Fact | None = None
    for f in epoch:
        if f.step == "topic_added":
            agenda[f.ref_id] = True
        elif f.step in ("topic_removed", "meeting_cancelled"):
            agenda[f.ref_id] = False
        elif f.step == "screened":
            screening = f
    if "closed" in steps:
        status = "closed"
    elif "resolved" in steps:
        status = "resolved"
    elif "case_overdue" in steps:
        status = "overdue"
    elif "case_opened" in steps:
        status = "under_supervision"
    elif steps & {"meeting_held", "meeting_concluded"}:
        status = "consulted"
    elif any(agenda.values()):
        status = "on_agenda"
    elif screening is not None:
        status = SCREENING_STATUS[screening.detail or ""]
    elif last_reopen >= 0 and _unsatisfied(ordered[last_reopen]):
        # 回访不满意: back under supervision when cases are sent back, else to screening.
        cases = ordered[last_reopen].data.get("reopened_cases")
        status = "under_supervision" if cases else "submitted"
    else:
        status = "submitted"

    # 重点难点问题: flagged at submission, then as each screening says (a leader may flag or
    # unflag it); since the flag was last raised.
    key_since = submitted.at if submitted.data.get("key_problem") else None
    for f in ordered:
        if f.step == "screened" and not f.data.get("key_problem"):
            key_since = None
        elif f.step == "screened" and key_since is None:
            key_since = f.at
    departments = sorted(
        {f.data["department"] for f in ordered if f.data.get("department")}  # type: ignore[misc]
    )
    office = submitted.office
    data = submitted.data
    row = {
        "issue_id": submitted.entity_id,
        "office": office,
        "title": data["title"],
        "category": data["category"],
        "community": data.get("community"),
        "liaison_station": data.get("liaison_station"),
        "source": data.get("source"),
        "key_problem": int(key_since is not None),
        "key_problem_since": key_since,
        "submitted_at": submitted.at,
        "year": submitted.year,
        "status": status,
        "departments": ",".join(departments),
        "updated_at": ordered[-1].at,
    }
    derived = Derived(row, links=departments)
    derived.add(office, submitted.year, "issues_collected")
    first_resolved: dict[int, str] = {}
    reported: set[int] = set()
    for f in ordered:
        if f.step == "resolved":
            first_resolved.setdefault(f.year, f.at)
        elif f.step == "screened" and f.detail == "report":
            reported.add(f.year)
    for year, at in first_resolved.items():
        derived.add(office, year, "issues_resolved")
        call = next((f for f in ordered if f.step == "callback" and f.at >= at), None)
        if call is not None:
            derived.add(office, year, "issues_called_back")
            if call.detail != "unreached":
                derived.add(office, year, "callbacks_reached")
            if call.detail in SATISFIED:
                derived.add(office, year, "callbacks_satisfied")
        if key_since is not None:
            derived.add(office, year, "key_problems_resolved")
        days = days_between(submitted.at, at)
        for key in ((office, year, days), (TOTAL, year, days)):
            derived.days[key] = derived.days.get(key, 0) + 1
    for year in reported:
        derived.add(office, year, "reports_forwarded")
    return derived


def derive_activity(facts: Iterable[Fact], until: str | None = None) -> Derived:
    """An outreach activity (委员进基层活动): one 期, and its members after corrections (人次)."""
    kept = [f for f in facts if until is None or f.at <= until]
    recorded = next((f for f in kept if f.step == "activity_recorded"), None)
    if recorded is None:
        return Derived(None)
    # A correction replaces the list whenever it was typed in, even if dated oddly.
    latest = max(kept, key=lambda f: (f.step == "activity_corrected", f.at, f.event_id))
    members = int(latest.data["members"])
    row = {
        "activity_id": recorded.entity_id,
        "office": recorded.office,
        "held_at": recorded.at,
        "year": recorded.year,
        "community": recorded.data.get("community"),
        "liaison_station": recorded.data.get("liaison_station"),
        "activity_group": recorded.data.get("activity_group"),
        "members": members,
    }
    derived = Derived(row)
    derived.add(recorded.office, recorded.year, "outreach_activities")
    derived.add(recorded.office, recorded.year, "member_participations", members)
    return derived


MEETING_RANK = {
    "meeting_planned": 0,
    "meeting_postponed": 1,
    "topic_added": 2,
    "topic_removed": 3,
    "opinion_received": 4,
    "meeting_held": 5,
    "meeting_concluded": 6,
    "meeting_cancelled": 7,
}
MEETING_STATUS = {
    "meeting_planned": "planned",
    "meeting_postponed": "postponed",
    "meeting_held": "held",
    "meeting_concluded": "concluded",
    "meeting_cancelled": "cancelled",
}


def derive_meeting(facts: Iterable[Fact], until: str | None = None) -> Derived:
    """A consultation meeting (协商会议); a joint one counts for each office, once in total."""
    ordered = in_order(facts, MEETING_RANK, until)
    planned = next((f for f in ordered if f.step == "meeting_planned"), None)
    held = next((f for f in ordered if f.step == "meeting_held"), None)
    known = held or planned
    if known is None:
        return Derived(None)
    states = [f for f in ordered if f.step in MEETING_STATUS]
    offices: list[str] = list(known.data["offices"])
    agenda: dict[str | None, bool] = {}
    for f in ordered:
        if f.step in ("topic_added", "topic_removed"):
            agenda[f.ref_id] = f.step == "topic_added"
    row = {
        "meeting_id": known.entity_id,
        "office": offices[0],
        "offices": ",".join(offices),
        "kind": known.detail,
        "title": None if planned is None else planned.data["title"],
        "status": MEETING_STATUS[states[-1].step] if states else "planned",
        "held_at": None if held is None else held.at,
        "held_year": None if held is None else held.year,
        "agenda": ",".join(sorted(str(i) for i, on in agenda.items() if on)),
    }
    derived = Derived(row, links=offices)
    if held is not None:
        figure = f"meetings_{held.detail}"
        for office in offices:
            derived.counts[(office, held.year, figure)] = 1
        derived.counts[(TOTAL, held.year, figure)] = 1
    return derived


def derive_case(facts: Iterable[Fact], until: str | None = None) -> Derived:
    """A supervision case (督办件): its letters (督办函), whether it went overdue (逾期), and
    the years residents' dissatisfaction sent it back (回访不满意退回, once a year)."""
    ordered = in_order(facts, CASE_RANK, until)
    opened = next((f for f in ordered if f.step == "case_opened"), None)
    derived = Derived(None)
    for f in ordered:
        if f.step == "letter_issued":
            derived.add(f.office, f.year, "letters_issued")
    overdue = next((f for f in ordered if f.step == "case_overdue"), None)
    if overdue is not None:
        derived.add(overdue.office, overdue.year, "cases_overdue")
    for office, year in {
        (f.office, f.year) for f in ordered if f.step == "case_reopened" and _by_resident(f)
    }:
        derived.add(office, year, "cases_reopened_by_callback")
    if opened is None:
        return derived
    deadlines = [f.data["deadline"] for f in ordered if f.data.get("deadline")]
    states = [f for f in ordered if f.step in CASE_STATUS]
    issues: list[str] = list(opened.data["issue_ids"])
    derived.row = {
        "case_id": opened.entity_id,
        "office": opened.office,
        "origin": opened.detail,
        "meeting_id": opened.ref_id,
        "department": opened.data["department"],
        "deadline": deadlines[-1],
        "opened_at": opened.at,
        "status": CASE_STATUS[states[-1].step],
        "overdue_at": None if overdue is None else overdue.at,
        "issue_ids": ",".join(issues),
    }
    derived.links = issues
    return derived


DERIVE = {
    ISSUE: derive_issue,
    ACTIVITY: derive_activity,
    MEETING: derive_meeting,
    CASE: derive_case,
}
