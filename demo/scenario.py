"""The 2020 pilot as a scenario (2020 年试点情景): seeded, deterministic, back-dated to 2020.

`generate(seed)` builds what the Yanbian prefecture office and the Yanji city office did in
2020 — liaison stations, activity groups, Thursday outreach activities, issues and their
screening, consultation meetings, supervision cases — so that the projections, counting the
resulting events, reproduce the report's figures exactly (the targets of
`demo/data/report.json`). The same seed gives the same scenario, byte for byte
(`Scenario.to_json`). Its places, people, words and meetings are data (`demo.content`); this
module is how they are put together.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date, datetime, timedelta
from typing import Literal

from demo.content import Content, MeetingPlan, Problem, content
from demo.records import (
    YEAR,
    Activity,
    ActivityGroup,
    Callback,
    Cancellation,
    Case,
    CaseStep,
    Correction,
    Figures,
    Invitation,
    Issue,
    Meeting,
    Member,
    Opinion,
    Outcome,
    Person,
    Postponement,
    Scenario,
    Screening,
    activity_days,
    at,
    in_year,
    workday_from,
)
from shared.clock import add_working_days, working_days
from shared.letters import chinese_date

DEFAULT_SEED = 2020
ACTIVITY_GROUPS = 141
COMMUNITIES = 70
EXPERTS = 29

# How the 316 issues of 2020 end the year. Resolved: 44 + 60 + 20 + 3 = 127.
ANSWERED = 44
REFERRED_VERIFIED, REFERRED_OVERDUE, REFERRED_OPEN = 60, 9, 71
REPORTS, REJECTED, PENDING = 44, 34, 24
DUPLICATES_OF_ANSWERED, DUPLICATES_OF_VERIFIED, DUPLICATES_OF_OPEN = 2, 1, 3
KEY_IN_VERIFIED_TOPICS, KEY_IN_VERIFIED_REFERRALS = 12, 6
KEY_IN_OPEN_TOPICS, KEY_IN_OVERDUE_REFERRALS = 2, 1


class _Generator:
    """Builds the scenario step by step from one `random.Random`, in a fixed order."""

    def __init__(self, seed: int, text: Content) -> None:
        self.seed = seed
        self.text = text
        self.rng = random.Random(seed)
        self.names: set[str] = set()
        self.issues: list[Issue] = []
        self.cases: list[Case] = []
        self.problem_of: dict[str, Problem] = {}
        # One finished case is sent back once before it is verified.
        self.send_back_pending = 1

    # --- people and places

    def name(self) -> str:
        while True:
            given = "".join(
                self.rng.choice(self.text.given) for _ in range(self.rng.choice((1, 2, 2)))
            )
            candidate = self.rng.choice(self.text.surnames) + given
            if candidate not in self.names:
                self.names.add(candidate)
                return candidate

    def build_places_and_people(self) -> None:
        self.communities = [
            (community, area)
            for area, communities in self.text.street_communities.items()
            for community in communities
        ]
        self.area_of = dict(self.communities)
        self.members = [
            Member(self.name(), office)
            for office, count in self.text.members.items()
            for _ in range(count)
        ]
        shuffled = [m.name for m in self.members]
        self.rng.shuffle(shuffled)
        self.groups = []
        extra = self.text.extra_group_community
        for n in range(ACTIVITY_GROUPS):
            community = self.communities[n % COMMUNITIES][0] if n < 2 * COMMUNITIES else extra
            members = tuple(shuffled[3 * n : 3 * n + 3])
            name = self.text.say("activity_group", number=n + 1)
            self.groups.append(ActivityGroup(name, community, members))
        self.experts = [self.name() for _ in range(EXPERTS)]
        self.heads = [(self.name(), department) for department in self.text.departments]

    def resident(self) -> tuple[str, str]:
        name = self.rng.choice(self.text.surnames) + self.rng.choice(self.text.resident_titles)
        phone = self.rng.choice(self.text.phone_prefixes) + "".join(
            self.rng.choice("0123456789") for _ in range(8)
        )
        return name, phone

    # --- outreach activities

    def build_activities(self) -> None:
        days = activity_days()
        chosen = [
            days[0],
            *sorted(self.rng.sample(days[1:], self.text.targets["outreach_activities"] - 1)),
        ]
        offices = [o for o, n in self.text.activities.items() for _ in range(n)]
        self.rng.shuffle(offices)
        streets, towns = list(self.text.streets), list(self.text.towns)
        areas = streets * 3 + towns + self.rng.sample(streets, 2)
        self.rng.shuffle(areas)
        counts = self.participation_counts(len(chosen))
        self.activities = []
        for n, (day, office, area, count) in enumerate(
            zip(chosen, offices, areas, counts, strict=True)
        ):
            community = self.rng.choice(self.text.street_communities[area])
            local = [g for g in self.groups if self.area_of[g.community] == area]
            lead = next(g for g in local if g.community == community)
            nearby = [m for g in local for m in g.members]
            self.rng.shuffle(nearby)
            others = [m.name for m in self.members if m.name not in nearby]
            self.rng.shuffle(others)
            members = tuple((nearby + others)[:count])
            self.activities.append(
                Activity(
                    key=f"a{n + 1:02d}",
                    office=office,
                    held_at=at(day, 14, self.rng.choice((0, 0, 30))),
                    community=community,
                    liaison_station=self.text.station_of(area),
                    activity_group=lead.name,
                    members=members,
                    note=self.text.say("activity_note", number=n + 1, area=area, groups=len(local)),
                )
            )
        self.correct_two_activities()

    def participation_counts(self, activities: int) -> list[int]:
        counts = [self.rng.randint(38, 60) for _ in range(activities)]
        while (gap := self.text.targets["member_participations"] - sum(counts)) != 0:
            n = self.rng.randrange(activities)
            step = 1 if gap > 0 else -1
            if 30 <= counts[n] + step <= 70:
                counts[n] += step
        return counts

    def correct_two_activities(self) -> None:
        """One member was missed in one record; another record had a wrong name and two missing."""
        first, second = self.rng.sample(range(len(self.activities)), 2)
        missed = self.activities[first]
        self.activities[first] = dataclasses.replace(
            missed,
            members=missed.members[:-1],
            corrections=(
                Correction(
                    missed.members,
                    self.text.say("one_member_missed"),
                    at(add_working_days(missed.held_at.date(), 1), 10),
                ),
            ),
        )
        wrong = self.activities[second]
        absent = next(m.name for m in self.members if m.name not in wrong.members)
        self.activities[second] = dataclasses.replace(
            wrong,
            members=(*wrong.members[:-2], absent),
            corrections=(
                Correction(
                    wrong.members,
                    self.text.say("one_wrong_two_missed"),
                    at(add_working_days(wrong.held_at.date(), 2), 9, 30),
                ),
            ),
        )

    # --- issues

    def submission(
        self, first: date, last: date, offices: tuple[str, ...] | None = None
    ) -> tuple[datetime, str, Activity | None]:
        """When and where an issue was collected: on an activity day or at a station, etc."""
        offices = offices or self.text.offices
        activities = [
            a for a in self.activities if first <= a.held_at.date() <= last and a.office in offices
        ]
        if activities and self.rng.random() < 0.65:
            activity = self.rng.choice(activities)
            minutes = self.rng.randint(20, 200)
            return activity.held_at + timedelta(minutes=minutes), "outreach", activity
        day = self.rng.choice(working_days(first, last))
        source = self.rng.choice(
            ("liaison_station", "liaison_station", "liaison_station", "visit", "online", "hotline")
        )
        return at(day, self.rng.randint(8, 16), self.rng.choice((0, 15, 30, 45))), source, None

    def new_issue(
        self,
        first: date,
        last: date,
        category: str | None = None,
        offices: tuple[str, ...] | None = None,
        key_problem: bool = False,
        moment: datetime | None = None,
        places: tuple[str, ...] = (),
        avoid: tuple[str, ...] = (),
    ) -> Issue:
        """A new issue collected between `first` and `last` (or by hotline at `moment`)."""
        offices = offices or self.text.offices
        if moment is None:
            submitted_at, source, activity = self.submission(first, last, offices)
        else:
            submitted_at, source, activity = moment, "hotline", None
        if activity is not None:
            office = activity.office
            community: str | None = activity.community
            station: str | None = activity.liaison_station
            recorded_by: str | None = self.rng.choice(activity.final_members)
        else:
            office = (
                offices[0] if len(offices) == 1 else self.rng.choice((*offices, self.text.city))
            )
            community, area = self.rng.choice(self.communities)
            station = self.text.station_of(area) if source == "liaison_station" else None
            if source == "liaison_station" and self.rng.random() < 0.2:
                # The two zones' stations serve enterprises, not a community.
                zone = self.rng.choice(self.text.areas[:2])
                station, community = self.text.station_of(zone), None
            recorded_by = (
                self.rng.choice(self.members).name
                if source in ("liaison_station", "visit")
                else None
            )
        category = category or self.rng.choice(self.text.categories)
        fitting = [p for p in self.text.problems[category] if not places or p.place in places]
        problem = self.rng.choice([p for p in fitting if p.subject not in avoid] or fitting)
        follows_community = problem.place in ("{home}", "{street}")
        place = problem.place.format(
            home=self.rng.choice(self.text.homes),
            street=self.rng.choice(self.text.street_places),
            school=self.rng.choice(self.text.schools),
        )
        where = f"{community or station}{place}" if follows_community else place
        reporter = self.resident() if source in ("online", "hotline") else (None, None)
        issue = Issue(
            key=f"i{len(self.issues) + 1:03d}",
            office=office,
            title=f"{where}{problem.subject}",
            description=self.text.say(
                "issue_description",
                lead=self.text.issue_leads[source],
                where=where,
                detail=problem.detail,
                impact=problem.impact,
                suggestion=problem.suggestion,
            ),
            category=category,
            submitted_at=submitted_at,
            source=source,
            community=community,
            liaison_station=station,
            activity=activity.key if activity else None,
            recorded_by=recorded_by,
            key_problem=key_problem,
            reporter_name=reporter[0],
            reporter_phone=reporter[1],
            screening=None,
        )
        self.issues.append(issue)
        self.problem_of[issue.key] = problem
        return issue

    def screen(self, issue: Issue, screening: Screening, closed_at: datetime | None = None) -> None:
        index = next(n for n, i in enumerate(self.issues) if i.key == issue.key)
        self.issues[index] = dataclasses.replace(issue, screening=screening, closed_at=closed_at)

    def screened_at(self, issue: Issue, low: int, high: int) -> datetime:
        day = add_working_days(issue.submitted_at.date(), self.rng.randint(low, high))
        return at(day, self.rng.choice((9, 10, 15)), self.rng.choice((0, 30)))

    def build_issues(self) -> None:
        jan = date(YEAR, 3, 2)
        for _ in range(ANSWERED):
            issue = self.new_issue(jan, date(YEAR, 12, 18))
            screened = issue.submitted_at + timedelta(minutes=self.rng.randint(30, 120))
            closed = None
            if screened.month < 12 and self.rng.random() < 0.3:
                closed = at(date(YEAR, 12, 28), 10)
            answer = self.problem_of[issue.key].answer
            self.screen(issue, Screening("answered", screened, answer=answer), closed)
        for _ in range(REPORTS):
            issue = self.new_issue(jan, date(YEAR, 12, 4))
            title = self.text.say("report_title", title=issue.title)
            self.screen(
                issue, Screening("report", self.screened_at(issue, 3, 8), report_title=title)
            )
        for _ in range(REJECTED):
            issue = self.new_issue(jan, date(YEAR, 12, 11))
            reason = self.rng.choice(self.text.rejection_reasons)
            self.screen(issue, Screening("rejected", self.screened_at(issue, 2, 6), reason=reason))
        self.build_referrals()
        for _ in range(PENDING):
            self.new_issue(date(YEAR, 12, 14), date(YEAR, 12, 31))
        # Just after midnight on New Year's Day: 2021 in China, still 2020 in UTC.
        self.new_issue(
            date(YEAR, 12, 31), date(YEAR, 12, 31), moment=at(date(YEAR + 1, 1, 1), 0, 30)
        )

    def refer(self, issue: Issue, screened_at: datetime, deadline: date) -> Screening:
        department = self.problem_of[issue.key].department
        return Screening("refer", screened_at, department=department, deadline=deadline)

    def build_referrals(self) -> None:
        key_flags = [True] * KEY_IN_VERIFIED_REFERRALS + [False] * (
            REFERRED_VERIFIED - KEY_IN_VERIFIED_REFERRALS
        )
        self.rng.shuffle(key_flags)
        verified = []
        for key_problem in key_flags:
            issue = self.new_issue(date(YEAR, 3, 2), date(YEAR, 9, 25), key_problem=key_problem)
            screened = self.screened_at(issue, 2, 6)
            deadline = workday_from(
                min(screened.date() + timedelta(days=self.rng.randint(30, 60)), date(YEAR, 12, 15))
            )
            self.screen(issue, self.refer(issue, screened, deadline))
            verified.append(self.issue_by_key(issue.key))
        overdue = []
        for n in range(REFERRED_OVERDUE):
            issue = self.new_issue(
                date(YEAR, 6, 1), date(YEAR, 10, 15), key_problem=n < KEY_IN_OVERDUE_REFERRALS
            )
            screened = self.screened_at(issue, 2, 6)
            deadline = workday_from(screened.date() + timedelta(days=self.rng.randint(30, 45)))
            self.screen(issue, self.refer(issue, screened, deadline))
            overdue.append(self.issue_by_key(issue.key))
        still_open = []
        for _ in range(REFERRED_OPEN):
            issue = self.new_issue(date(YEAR, 10, 9), date(YEAR, 12, 18))
            screened = self.screened_at(issue, 2, 6)
            deadline = workday_from(date(YEAR + 1, self.rng.randint(1, 4), self.rng.randint(1, 28)))
            self.screen(issue, self.refer(issue, screened, deadline))
            still_open.append(self.issue_by_key(issue.key))
        for issue in verified:
            self.referral_case(issue, "verified")
        for issue in overdue:
            self.referral_case(issue, "overdue")
        for issue in still_open:
            self.referral_case(issue, "open")
        answered = [i for i in self.issues if i.screening and i.screening.decision == "answered"]
        early_open = [i for i in still_open if i.submitted_at.month < 12]
        originals = (
            self.rng.sample([i for i in answered if i.submitted_at.month < 12], 2)
            + self.rng.sample(verified, DUPLICATES_OF_VERIFIED)
            + self.rng.sample(early_open, DUPLICATES_OF_OPEN)
        )
        for original in originals:
            self.duplicate(original)

    def issue_by_key(self, key: str) -> Issue:
        return next(i for i in self.issues if i.key == key)

    def duplicate(self, original: Issue) -> None:
        assert original.screening is not None
        first = add_working_days(original.screening.screened_at.date(), 1)
        issue = self.new_issue(
            first, add_working_days(first, 10), original.category, (original.office,)
        )
        issue = dataclasses.replace(
            issue,
            title=original.title,
            description=self.text.say("duplicate_description", description=original.description),
            key_problem=False,
        )
        self.issues[-1] = issue
        screening = Screening("duplicate", self.screened_at(issue, 1, 3), duplicate_of=original.key)
        self.screen(issue, screening)

    # --- supervision cases

    def referral_case(self, issue: Issue, fate: str) -> None:
        assert issue.screening is not None and issue.screening.deadline is not None
        problem = self.problem_of[issue.key]
        self.cases.append(
            self.case(
                key=f"c-{issue.key}",
                office=issue.office,
                origin="referral",
                issues=(issue.key,),
                meeting=None,
                outcome=None,
                department=problem.department,
                opened=issue.screening.screened_at,
                deadline=issue.screening.deadline,
                subject=issue.title,
                fate=fate,
            )
        )

    def case(
        self,
        *,
        key: str,
        office: str,
        origin: Literal["referral", "outcome"],
        issues: tuple[str, ...],
        meeting: str | None,
        outcome: int | None,
        department: str,
        opened: datetime,
        deadline: date,
        subject: str,
        fate: str,
    ) -> Case:
        return Case(
            key=key,
            office=office,
            origin=origin,
            issues=issues,
            meeting=meeting,
            outcome=outcome,
            department=department,
            deadline=deadline,
            steps=tuple(self.case_steps(opened, deadline, subject, fate, origin == "outcome")),
        )

    def case_steps(
        self, opened: datetime, deadline: date, subject: str, fate: str, thorough: bool
    ) -> list[CaseStep]:
        """A letter, then the department's work; `fate` says where it stands at year end."""
        year_end = date(YEAR, 12, 31)
        letter_day = add_working_days(opened.date(), self.rng.randint(1, 3))
        if fate == "open" and letter_day > year_end:
            return []
        span = working_days(letter_day, min(deadline, year_end))
        requirements = self.text.say(
            "letter_requirements", deadline=chinese_date(deadline), subject=subject
        )
        steps = [
            CaseStep(
                "letters", at(letter_day, 10), {"requirements": requirements, "deadline": deadline}
            )
        ]
        if fate == "open":
            # How far an unfinished case got by the end of the year.
            reached = self.rng.randint(0, 3)
            later = [
                CaseStep("acknowledgement", at(add_working_days(letter_day, 1), 9)),
                CaseStep(
                    "progress",
                    at(add_working_days(letter_day, 6), 16),
                    {"note": self.text.say("progress")},
                ),
            ]
            return steps + [s for s in later[:reached] if s.at.date() <= year_end]
        steps.append(CaseStep("acknowledgement", at(span[1], 9, 30)))
        steps.append(
            CaseStep(
                "progress",
                at(span[len(span) * 3 // 10], 16),
                {"note": self.text.say("progress")},
            )
        )
        if fate == "overdue":
            return steps
        if thorough or self.rng.random() < 0.3:
            kind = self.rng.choice(("research", "inspection", "symposium"))
            members = sorted(
                self.rng.sample([m.name for m in self.members], self.rng.randint(3, 6))
            )
            steps.append(
                CaseStep(
                    "follow-ups",
                    at(span[len(span) * 5 // 10], 14),
                    {"kind": kind, "members": members, "note": self.text.follow_up_notes[kind]},
                )
            )
        if self.send_back_pending:
            self.send_back_pending -= 1
            new_deadline = deadline + timedelta(days=15)
            steps += [
                CaseStep(
                    "completion",
                    at(span[len(span) * 6 // 10], 15),
                    {"note": self.text.say("first_completion")},
                ),
                CaseStep(
                    "send-back",
                    at(span[len(span) * 7 // 10], 10),
                    {"reason": self.text.say("sent_back"), "deadline": new_deadline},
                ),
            ]
        completed = span[len(span) * 8 // 10]
        verified = add_working_days(completed, self.rng.randint(2, 5))
        verified = min(verified, working_days(completed, year_end)[-1])
        return [
            *steps,
            CaseStep(
                "completion",
                at(completed, 15),
                {"note": self.text.say("completion", subject=subject)},
            ),
            CaseStep("verification", at(verified, 10, 30)),
        ]

    # --- meetings

    def build_meetings(self) -> None:
        self.meetings = []
        key_flags = self.topic_key_flags()
        for plan in self.text.meeting_plans:
            self.meetings.append(self.meeting(plan, key_flags))

    def topic_key_flags(self) -> dict[str, list[bool]]:
        """Which topic issues are key problems: 12 in finished outcomes, 2 in unfinished ones."""
        verified_slots = [
            (plan.key, n)
            for plan in self.text.meeting_plans
            for n in range(
                sum(plan.outcome_sizes) - (plan.outcome_sizes[-1] if plan.open_deadline else 0)
            )
        ]
        chosen = set(self.rng.sample(verified_slots, KEY_IN_VERIFIED_TOPICS))
        flags: dict[str, list[bool]] = {}
        open_keys = KEY_IN_OPEN_TOPICS
        for plan in self.text.meeting_plans:
            total = sum(plan.outcome_sizes)
            finished = total - (plan.outcome_sizes[-1] if plan.open_deadline else 0)
            row = [(plan.key, n) in chosen for n in range(finished)]
            if plan.open_deadline:
                unfinished = [False] * plan.outcome_sizes[-1]
                if open_keys:
                    unfinished[0], open_keys = True, open_keys - 1
                row += unfinished
            flags[plan.key] = row
        return flags

    def meeting(self, plan: MeetingPlan, key_flags: dict[str, list[bool]]) -> Meeting:
        offices = (plan.office, *plan.joint_offices)
        meeting = Meeting(
            key=plan.key,
            office=plan.office,
            joint_offices=plan.joint_offices,
            kind=plan.kind,
            title=plan.title,
            theme=plan.theme,
            starts_at=plan.postponed_from[0] if plan.postponed_from else plan.starts,
            ends_at=plan.postponed_from[1] if plan.postponed_from else plan.ends,
            venue=plan.venue,
            submission_deadline=plan.ends if plan.kind == "written" else None,
            planned_at=at(plan.planned, 10),
        )
        if plan.postponed_from:
            meeting = dataclasses.replace(
                meeting,
                postponement=Postponement(
                    plan.starts,
                    plan.ends,
                    plan.postponement_reason or "",
                    at(plan.postponed_from[0].date() - timedelta(days=8), 10),
                ),
            )
        if plan.cancelled_at:
            return dataclasses.replace(
                meeting,
                cancellation=Cancellation(plan.cancellation_reason or "", plan.cancelled_at),
            )
        # Topics are collected in the weeks before the meeting and screened before it starts.
        first = max(date(YEAR, 3, 2), plan.planned - timedelta(days=45))
        last = meeting.starts_at.date() - timedelta(days=10)
        topics = []
        for flag in key_flags[plan.key]:
            issue = self.new_issue(
                first,
                last,
                plan.category,
                offices,
                key_problem=flag,
                places=plan.places,
                avoid=tuple(self.problem_of[i.key].subject for i in topics),
            )
            self.screen(issue, Screening("topic", self.screened_at(issue, 1, 3)))
            topics.append(self.issue_by_key(issue.key))
        invitations, attendance, opinions = self.participants(plan, topics)
        if plan.kind == "written":
            closed = at(add_working_days(plan.ends.date(), 1), 9, 30)
            held_at, concluded = None, at(add_working_days(closed.date(), 3), 10)
        else:
            closed, held_at = None, plan.starts
            concluded = at(add_working_days(plan.starts.date(), self.rng.randint(3, 6)), 10)
        outcomes = []
        start = 0
        for n, size in enumerate(plan.outcome_sizes):
            covered = topics[start : start + size]
            start += size
            problem = self.problem_of[covered[0].key]
            unfinished = plan.open_deadline is not None and n == len(plan.outcome_sizes) - 1
            deadline = (
                plan.open_deadline
                if unfinished and plan.open_deadline
                else workday_from(
                    min(
                        concluded.date() + timedelta(days=self.rng.randint(45, 75)),
                        date(YEAR, 12, 18),
                    )
                )
            )
            outcome = Outcome(
                tuple(i.key for i in covered),
                self.text.say(
                    "recommendation",
                    department=problem.department,
                    suggestion=problem.suggestion,
                    title=covered[0].title,
                ),
                problem.department,
                deadline,
            )
            outcomes.append(outcome)
            fate = (
                "verified" if not unfinished else ("overdue" if deadline.year == YEAR else "open")
            )
            self.cases.append(
                self.case(
                    key=f"c-{plan.key}-{n + 1}",
                    office=plan.office,
                    origin="outcome",
                    issues=outcome.issues,
                    meeting=plan.key,
                    outcome=n,
                    department=outcome.department,
                    opened=concluded,
                    deadline=deadline,
                    subject=covered[0].title,
                    fate=fate,
                )
            )
        return dataclasses.replace(
            meeting,
            invitations=invitations,
            topics=tuple(i.key for i in topics),
            topics_added_at=tuple(self.added_at(meeting, i) for i in topics),
            held_at=held_at,
            attendance=attendance,
            opinions=opinions,
            closed_at=closed,
            concluded_at=concluded,
            outcomes=tuple(outcomes),
        )

    @staticmethod
    def added_at(meeting: Meeting, topic: Issue) -> datetime:
        """On the agenda an hour after the later of its screening and the meeting's planning
        (or postponement)."""
        assert topic.screening is not None
        steps = [topic.screening.screened_at, meeting.planned_at]
        if meeting.postponement:
            steps.append(meeting.postponement.postponed_at)
        return max(steps) + timedelta(hours=1)

    def participants(
        self, plan: MeetingPlan, topics: list[Issue]
    ) -> tuple[tuple[Invitation, ...], tuple[str, ...], tuple[Opinion, ...]]:
        office = plan.office
        offices = (office, *plan.joint_offices)
        per_office = 8 // len(offices) if plan.kind != "written" else 6 // len(offices)
        members = [
            person
            for o in offices
            for person in self.rng.sample(
                [p for p in self.people_of(office, "member") if self.member_office[p.name] == o],
                per_office,
            )
        ]
        experts = self.rng.sample(
            self.people_of(office, "expert"), 5 if plan.kind != "written" else 4
        )
        departments = sorted({self.problem_of[i.key].department for i in topics})
        heads = [
            p for p in self.people_of(office, "department_head") if p.department in departments
        ]
        if plan.kind == "written":
            invited = members + experts
            invitations = tuple(Invitation(p.person_id, p.kind, True) for p in invited)
            window = working_days(plan.starts.date(), plan.ends.date())
            opinions = tuple(
                Opinion(
                    p.person_id,
                    self.text.say(
                        "written_opinion",
                        theme=plan.theme,
                        suggestion=self.problem_of[self.rng.choice(topics).key].suggestion,
                    ),
                    at(self.rng.choice(window), self.rng.randint(9, 16)),
                )
                for p in self.rng.sample(invited, 8)
            )
            return invitations, (), tuple(sorted(opinions, key=lambda o: o.received_at))
        declined = members[-1].person_id
        invited = members + experts + heads
        invitations = tuple(
            Invitation(p.person_id, p.kind, p.person_id != declined) for p in invited
        )
        attendance = tuple(p.person_id for p in invited if p.person_id != declined)
        return invitations, attendance, ()

    def build_people(self) -> None:
        """Each office's meeting reference data: every member, the expert panel, the heads."""
        self.member_office = {m.name: m.office for m in self.members}
        self.people: list[Person] = []
        for office in self.text.offices:
            self.people += [
                Person(f"{office}-member-{n + 1:03d}", office, m.name, "member")
                for n, m in enumerate(self.members)
            ]
            self.people += [
                Person(f"{office}-expert-{n + 1:02d}", office, name, "expert")
                for n, name in enumerate(self.experts)
            ]
            self.people += [
                Person(f"{office}-head-{n + 1:02d}", office, name, "department_head", department)
                for n, (name, department) in enumerate(self.heads)
            ]

    def people_of(self, office: str, kind: str) -> list[Person]:
        return [p for p in self.people if p.office == office and p.kind == kind]

    def invited_people(self, meetings: list[Meeting]) -> tuple[Person, ...]:
        """Only the people some meeting invites are registered: the rest would be noise."""
        needed = {i.person_id for m in meetings for i in m.invitations}
        return tuple(p for p in self.people if p.person_id in needed)


def _figures(
    scenario_cases: list[Case],
    issues: list[Issue],
    meetings: list[Meeting],
    activities: list[Activity],
) -> Figures:
    """The figures the projections must compute from the scenario's events in 2020."""
    by_key = {i.key: i for i in issues}
    resolved = {i.key for i in issues if i.screening and i.screening.decision == "answered"} | {
        key for c in scenario_cases if c.verified for key in c.issues
    }
    resolved |= {
        i.key
        for i in issues
        if i.screening
        and i.screening.decision == "duplicate"
        and i.screening.duplicate_of in resolved
    }
    held = [m for m in meetings if m.counted_at and in_year(m.counted_at)]
    letters = [
        s for c in scenario_cases for s in c.steps if s.action == "letters" and in_year(s.at)
    ]
    overdue = [
        c
        for c in scenario_cases
        if c.deadline.year == YEAR and not any(s.action == "completion" for s in c.steps)
    ]
    return Figures(
        outreach_activities=sum(in_year(a.held_at) for a in activities),
        member_participations=sum(len(a.final_members) for a in activities if in_year(a.held_at)),
        issues_collected=sum(in_year(i.submitted_at) for i in issues),
        issues_resolved=len(resolved),
        thematic=sum(m.kind == "thematic" for m in held),
        onsite=sum(m.kind == "onsite" for m in held),
        written=sum(m.kind == "written" for m in held),
        key_problems_resolved=sum(by_key[k].key_problem for k in resolved),
        reports_forwarded=sum(
            1
            for i in issues
            if i.screening and i.screening.decision == "report" and in_year(i.screening.screened_at)
        ),
        letters_issued=len(letters),
        cases_overdue=len(overdue),
        issues_called_back=len(
            called := [by_key[k].callback for k in resolved if by_key[k].callback]
        ),
        callbacks_reached=sum(c.reached for c in called if c),
        callbacks_satisfied=sum(
            c.satisfaction in ("satisfied", "basically_satisfied") for c in called if c
        ),
    )


def callbacks(
    issues: list[Issue], cases: list[Case], seed: int, notes: dict[str | None, str]
) -> list[Issue]:
    """回访 for most resolved issues, a few working days after the resolution, from a random
    of their own (the rest of the scenario stays what the seed gave before). Only an issue
    answered on the spot and not closed may be unsatisfied: it goes back to screening, and
    no supervision case is sent back, so the year's figures stay the report's."""
    rng = random.Random(seed + 1)
    verified = {
        key: step.at
        for case in cases
        for step in case.steps
        if step.action == "verification"
        for key in case.issues
    }
    called = []
    unsatisfied_left = 3
    for issue in issues:
        screening = issue.screening
        resolved_at = verified.get(issue.key)
        if screening is not None and screening.decision == "answered":
            resolved_at = screening.screened_at
        if resolved_at is None or rng.random() >= 0.7:
            called.append(issue)
            continue
        called_at = at(add_working_days(resolved_at.date(), rng.randint(2, 6)), 10, 30)
        if called_at.year != YEAR or called_at <= resolved_at:
            called.append(issue)
            continue
        reached = rng.random() < 0.9
        satisfaction = rng.choices(("satisfied", "basically_satisfied"), (70, 30))[0]
        if (
            unsatisfied_left
            and screening is not None
            and screening.decision == "answered"
            and issue.closed_at is None
            and rng.random() < 0.1
        ):
            satisfaction, unsatisfied_left = "unsatisfied", unsatisfied_left - 1
        chosen = satisfaction if reached else None
        callback = Callback(called_at, reached, chosen, notes[chosen])  # type: ignore[arg-type]
        called.append(dataclasses.replace(issue, callback=callback))
    return called


def generate(seed: int = DEFAULT_SEED, text: Content | None = None) -> Scenario:
    """The 2020 scenario for a seed, made of `text` (by default the data in `demo/data/`;
    `DemoDataMissing` when it is not there); raises if it does not reproduce the targets."""
    text = text or content()
    g = _Generator(seed, text)
    g.build_places_and_people()
    g.build_activities()
    g.build_people()
    g.build_issues()
    g.build_meetings()
    called = callbacks(g.issues, g.cases, seed, text.callback_notes)
    issues = sorted(called, key=lambda i: (i.submitted_at, i.key))
    figures = _figures(g.cases, issues, g.meetings, g.activities)
    missed = {k: v for k, v in text.targets.items() if getattr(figures, k) != v}
    if missed:
        raise AssertionError(f"scenario {seed} misses its targets: {missed} vs {figures}")
    return Scenario(
        seed=seed,
        communities=tuple(g.communities),
        liaison_stations=tuple(text.station_of(a) for a in text.areas),
        activity_groups=tuple(g.groups),
        members=tuple(g.members),
        people=g.invited_people(g.meetings),
        departments=text.departments,
        venues=tuple(text.venues.items()),
        activities=tuple(g.activities),
        issues=tuple(issues),
        meetings=tuple(g.meetings),
        cases=tuple(g.cases),
        expected=figures,
    )
