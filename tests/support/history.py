"""A generated multi-service history (生成的历史) for the projection's tests and benchmarks.

Issues of several offices go through every path the three services publish: screening
decisions, topics on (sometimes joint) meetings, outcomes, supervision cases with letters,
overdue cases, verification, resolution, closing and reopening; outreach activities with
corrections. Each stream's messages come in the order of their times, as a service would
publish them; the streams know nothing of each other's order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from shared.consumer import Delivered
from shared.contracts import (
    ActivityCorrectedV1,
    ActivityRecordedV1,
    Attendee,
    CaseOpenedV1,
    CaseOverdueV1,
    CaseReopenedV1,
    CaseVerifiedV1,
    Contract,
    Envelope,
    IssueCallbackRecordedV1,
    IssueClosedV1,
    IssueReopenedV1,
    IssueResolvedV1,
    IssueScreenedV1,
    IssueSubmittedV1,
    LetterIssuedV1,
    MeetingConcludedV1,
    MeetingHeldV1,
    MeetingPlannedV1,
    Outcome,
    TopicAddedV1,
    TopicRemovedV1,
)

OFFICES = ("yanji", "tumen", "dunhua", "hunchun")
SATISFACTION = ("satisfied", "basically_satisfied", "unsatisfied")
STREAMS = ("INTAKE", "MEETINGS", "SUPERVISION")
START = datetime(2020, 12, 20, 8, 0, tzinfo=UTC)
"""Near New Year in China: histories straddle two years."""


def uid(*parts: object) -> UUID:
    return uuid5(NAMESPACE_URL, "shangliang-bench:" + ":".join(str(p) for p in parts))


class History:
    """Events of the three streams, built issue by issue."""

    def __init__(self, seed: int = 0, days: float = 30.0) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        # Follow-up calls draw from their own generator: the rest of a seed's history stays
        # what it was before they were added.
        self.calls = random.Random(seed + 1)
        self.days = days
        self.events: dict[str, list[tuple[datetime, Contract]]] = {s: [] for s in STREAMS}

    def uid(self, *parts: object) -> UUID:
        """Ids of this history's own: two seeds never share an issue."""
        return uid(self.seed, *parts)

    def at(self, after: datetime, hours: float = 48.0) -> datetime:
        return after + timedelta(minutes=self.random.uniform(1, hours * 60))

    def add(self, stream: str, contract: Contract) -> None:
        self.events[stream].append((contract.occurred_at, contract))

    def issue(self, n: int) -> None:
        r = self.random
        office = OFFICES[n % len(OFFICES)]
        issue_id = self.uid("issue", n)
        submitted = START + timedelta(minutes=r.uniform(0, self.days * 1440))
        key = n % 7 == 0
        self.add(
            "INTAKE",
            IssueSubmittedV1(
                issue_id=issue_id,
                office=office,
                title=f"问题 {n}",
                description="描述",
                category=("城市管理", "民生保障", "生态环境")[n % 3],
                submitted_at=submitted,
                community=f"社区{n % 5}",
                key_problem=key,
            ),
        )
        path = r.choice(("none", "topic", "topic", "report", "refer", "answered", "rejected"))
        if path == "none":
            return
        screened = self.at(submitted)
        decision = {"refer": "refer", "none": "topic"}.get(path, path)
        self.add(
            "INTAKE",
            IssueScreenedV1(
                issue_id=issue_id,
                office=office,
                decision=decision,
                screened_at=screened,
                screened_by="leader",
                title=f"问题 {n}",
                category="城市管理",
                key_problem=key or n % 11 == 0,
                department="住建局" if decision == "refer" else None,
                deadline=date(2021, 3, 1) if decision == "refer" else None,
                report_title="社情民意" if decision == "report" else None,
                reason="不属于政协职责" if decision == "rejected" else None,
            ),
        )
        if path == "answered":
            self.resolve(office, issue_id, self.at(screened, 2), "answered", None)
            return
        if path in ("report", "rejected"):
            return
        case_from = screened
        meeting_id = None
        if path == "topic":
            meeting_id = self.uid("meeting", office, n // 6)
            offices = [office, OFFICES[(n + 1) % len(OFFICES)]] if n % 12 == 0 else [office]
            added = self.at(screened)
            self.add(
                "MEETINGS",
                TopicAddedV1(
                    meeting_id=meeting_id,
                    offices=offices,
                    issue_id=issue_id,
                    issue_office=office,
                    added_at=added,
                ),
            )
            if r.random() < 0.2:
                self.add(
                    "MEETINGS",
                    TopicRemovedV1(
                        meeting_id=meeting_id,
                        offices=offices,
                        issue_id=issue_id,
                        issue_office=office,
                        removed_at=self.at(added, 4),
                    ),
                )
                return
            held = self.at(added)
            kind = ("thematic", "onsite", "written")[n % 3]
            self.add(
                "MEETINGS",
                MeetingPlannedV1(
                    meeting_id=meeting_id,
                    offices=offices,
                    kind=kind,
                    title=f"协商会 {n}",
                    theme="主题",
                    starts_at=held,
                    ends_at=held + timedelta(hours=2),
                    planned_at=added - timedelta(hours=1),
                ),
            )
            self.add(
                "MEETINGS",
                MeetingHeldV1(
                    meeting_id=meeting_id,
                    offices=offices,
                    kind=kind,
                    held_at=held,
                    attendance=[Attendee(person_id="m1", name="委员", role="member")],
                    issue_ids=[issue_id],
                ),
            )
            concluded = self.at(held, 6)
            outcome = Outcome(
                outcome_id=self.uid("outcome", n),
                issue_ids=[issue_id],
                recommendation="建议",
                department="城管局",
                deadline=date(2021, 2, 1),
            )
            self.add(
                "MEETINGS",
                MeetingConcludedV1(
                    meeting_id=meeting_id,
                    offices=offices,
                    kind=kind,
                    title=f"协商会 {n}",
                    concluded_at=concluded,
                    outcomes=[outcome],
                ),
            )
            case_from = concluded
        self.supervise(n, office, issue_id, case_from, meeting_id, path)

    def supervise(
        self,
        n: int,
        office: str,
        issue_id: UUID,
        after: datetime,
        meeting_id: UUID | None,
        path: str,
    ) -> None:
        r = self.random
        case_id = self.uid("case", n)
        opened = self.at(after, 2)
        department = "住建局" if path == "refer" else "城管局"
        self.add(
            "SUPERVISION",
            CaseOpenedV1(
                case_id=case_id,
                office=office,
                origin="referral" if path == "refer" else "outcome",
                meeting_id=meeting_id,
                outcome_id=None if meeting_id is None else self.uid("outcome", n),
                issue_ids=[issue_id],
                department=department,
                deadline=date(2021, 2, 1),
                requirements="按期办结",
                opened_at=opened,
            ),
        )
        issued = self.at(opened)
        self.add(
            "SUPERVISION",
            LetterIssuedV1(
                case_id=case_id,
                office=office,
                department=department,
                number=f"督〔{issued.year}〕{n}号",
                year=issued.year,
                sequence=n,
                deadline=date(2021, 2, 1),
                requirements="按期办结",
                issued_at=issued,
            ),
        )
        if r.random() < 0.25:
            self.add(
                "SUPERVISION",
                CaseOverdueV1(
                    case_id=case_id,
                    office=office,
                    department=department,
                    deadline=date(2021, 2, 1),
                    issue_ids=[issue_id],
                    overdue_at=self.at(issued),
                ),
            )
            return
        if r.random() < 0.2:
            return
        verified = self.at(issued, 96)
        self.add(
            "SUPERVISION",
            CaseVerifiedV1(
                case_id=case_id,
                office=office,
                department=department,
                issue_ids=[issue_id],
                verified_at=verified,
            ),
        )
        resolved = self.at(verified, 1)
        self.resolve(office, issue_id, resolved, "case", case_id, department)
        if r.random() < 0.4:
            closed = self.at(resolved)
            self.add("INTAKE", IssueClosedV1(issue_id=issue_id, office=office, closed_at=closed))
            if r.random() < 0.3:
                reopened = self.at(closed)
                self.add(
                    "INTAKE",
                    IssueReopenedV1(
                        issue_id=issue_id, office=office, reopened_at=reopened, reason="复发"
                    ),
                )
                if r.random() < 0.5:
                    self.resolve(office, issue_id, self.at(reopened), "answered", None)

    def resolve(
        self,
        office: str,
        issue_id: UUID,
        at: datetime,
        via: str,
        case_id: UUID | None,
        department: str = "",
    ) -> None:
        """`department` is the case's, which a resident unsatisfied when called back sends back."""
        self.add(
            "INTAKE",
            IssueResolvedV1(
                issue_id=issue_id, office=office, resolved_at=at, via=via, case_id=case_id
            ),
        )
        c = self.calls
        if c.random() < 0.6:
            reached = c.random() < 0.85
            satisfaction = c.choices(SATISFACTION, weights=(60, 25, 15))[0] if reached else None
            unsatisfied = satisfaction == "unsatisfied" and case_id is not None
            called = at + timedelta(hours=c.uniform(1, 24 * 9))
            self.add(
                "INTAKE",
                IssueCallbackRecordedV1(
                    issue_id=issue_id,
                    office=office,
                    reached=reached,
                    satisfaction=satisfaction,
                    called_at=called,
                    reopened_cases=[case_id] if unsatisfied else [],
                ),
            )
            if unsatisfied:
                self.add(
                    "SUPERVISION",
                    CaseReopenedV1(
                        case_id=case_id,
                        office=office,
                        department=department,
                        reason="居民回访不满意",
                        deadline=date(2021, 3, 1),
                        reopened_at=called,
                        cause="callback",
                    ),
                )

    def activity(self, n: int) -> None:
        office = OFFICES[n % len(OFFICES)]
        activity_id = self.uid("activity", n)
        held = START + timedelta(minutes=self.random.uniform(0, self.days * 1440))
        members = [f"委员{k}" for k in range(self.random.randint(3, 12))]
        self.add(
            "INTAKE",
            ActivityRecordedV1(
                activity_id=activity_id, office=office, held_at=held, members=members
            ),
        )
        if n % 3 == 0:
            self.add(
                "INTAKE",
                ActivityCorrectedV1(
                    activity_id=activity_id,
                    office=office,
                    members=members[:-1],
                    reason="名单有误",
                    corrected_at=self.at(held, 24),
                ),
            )

    def messages(self) -> dict[str, list[Delivered]]:
        """Each stream's messages in its own order (by time), numbered from 1."""
        streams: dict[str, list[Delivered]] = {}
        for stream, events in self.events.items():
            events.sort(key=lambda e: e[0])
            streams[stream] = [
                Delivered(
                    sequence,
                    Envelope.wrap(
                        str(self.uid(stream, sequence, contract.occurred_at)),
                        contract.occurred_at,
                        contract.subject(office_of(contract)),
                        contract,
                    ),
                    contract,
                )
                for sequence, (_, contract) in enumerate(events, start=1)
            ]
        return streams


def office_of(contract: Contract) -> str:
    """The office a contract's subject names: its own, or the organising one of a meeting."""
    office = getattr(contract, "office", None)
    return office if isinstance(office, str) else contract.offices[0]  # type: ignore[attr-defined]


def history(issues: int, seed: int = 0, days: float = 30.0) -> dict[str, list[Delivered]]:
    """A history of `issues` issues (and an activity per ten) over `days` days."""
    built = History(seed, days)
    for n in range(issues):
        built.issue(n)
        if n % 10 == 0:
            built.activity(n)
    return built.messages()


def batches(messages: list[Delivered], size: int) -> Iterator[list[Delivered]]:
    for first in range(0, len(messages), size):
        yield messages[first : first + size]
