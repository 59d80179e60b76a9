"""The deadline scheduler with an injected clock: each step once, also with two replicas
scanning one store at the same time."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from services.supervision.application import SupervisionApplication
from services.supervision.domain import SupervisionCase, case_id_for_outcome
from services.supervision.publishing import to_contract
from services.supervision.scheduler import DeadlineScheduler
from shared.clock import CHINA
from shared.contracts import CaseEscalatedV1, CaseOverdueV1


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def midnight(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=CHINA)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[list[SupervisionApplication]]:
    """Application objects on one SQLite file, as replicas of the service would be."""
    opened: list[SupervisionApplication] = []
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "supervision.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "10",
    }
    opened.extend(SupervisionApplication(env=dict(env)) for _ in range(2))
    try:
        yield opened
    finally:
        for app in opened:
            app.close()


def a_case_with_letter(
    app: SupervisionApplication, deadline: date = date(2020, 10, 9), completed_on: str | None = None
) -> UUID:
    now = midnight("2026-11-26")
    case = SupervisionCase(
        id=case_id_for_outcome(uuid4()),
        office="yanji",
        origin="outcome",
        meeting_id=uuid4(),
        outcome_id=uuid4(),
        issue_ids=[uuid4()],
        department="延吉市住房和城乡建设局",
        deadline=deadline,
        requirements="修复路灯",
        opened_at=midnight("2020-06-30"),
    )
    case.issue_letter(
        "延市政协督〔2020〕1号", 2020, 1, deadline, "修复路灯", midnight("2020-07-02"), now
    )
    case.acknowledge(midnight("2020-07-03"), now)
    if completed_on is not None:
        case.report_completion("已修复", midnight(completed_on) + timedelta(hours=10), now)
    app.save(case)
    return case.id


def steps_stored(app: SupervisionApplication) -> Counter[tuple[UUID, str, datetime]]:
    found: Counter[tuple[UUID, str, datetime]] = Counter()
    for notification in app.recorder.select_notifications(1, 100_000):
        e = app.mapper.to_domain_event(notification)
        if isinstance(e, SupervisionCase.BecameOverdue):
            found[(e.originator_id, "overdue", e.overdue_at)] += 1
        elif isinstance(e, SupervisionCase.Escalated):
            found[(e.originator_id, e.step, e.escalated_at)] += 1
    return found


async def test_the_scheduler_records_each_step_when_its_clock_reaches_it_and_once(
    store: list[SupervisionApplication],
) -> None:
    app = store[0]
    case_id = a_case_with_letter(app)
    clock = Clock(midnight("2020-09-27"))
    scheduler = DeadlineScheduler(app, clock)

    seen = []
    for now in ("2020-09-27", "2020-09-28", "2020-10-09", "2020-10-10", "2020-10-15", "2020-10-16"):
        clock.now = midnight(now) + timedelta(hours=1)
        await scheduler.scan()
        await scheduler.scan()  # a second look at the same time changes nothing
        seen.append(sorted(step for _, step, _ in steps_stored(app)))

    assert seen == [
        [],
        ["reminder"],
        ["reminder", "urge"],
        ["overdue", "reminder", "urge"],
        ["overdue", "reminder", "urge"],
        ["escalate", "overdue", "reminder", "urge"],
    ]
    stored = steps_stored(app)
    assert set(stored.values()) == {1}
    assert (case_id, "overdue", midnight("2020-10-10")) in stored
    assert app.get_case(case_id).overdue


async def test_a_back_dated_case_is_found_overdue_at_once_dated_by_its_deadline(
    store: list[SupervisionApplication],
) -> None:
    app = store[0]
    case_id = a_case_with_letter(app, deadline=date(2020, 9, 30))
    changed = await DeadlineScheduler(app, Clock(midnight("2026-11-26"))).scan()
    assert changed == 1
    assert set(steps_stored(app)) == {
        (case_id, "reminder", midnight("2020-09-27")),  # the make-up Sunday was a working day
        (case_id, "urge", midnight("2020-09-30")),
        (case_id, "overdue", midnight("2020-10-01")),
        (case_id, "escalate", midnight("2020-10-15")),  # 9, 10, 12, 13, 14 Oct worked
    }


async def test_completion_before_the_deadline_means_never_overdue_and_late_means_overdue(
    store: list[SupervisionApplication],
) -> None:
    app = store[0]
    in_time = a_case_with_letter(app, deadline=date(2020, 9, 30), completed_on="2020-09-29")
    late = a_case_with_letter(app, deadline=date(2020, 9, 30), completed_on="2020-10-09")
    await DeadlineScheduler(app, Clock(midnight("2026-11-26"))).scan()
    stored = steps_stored(app)
    assert {step for case, step, _ in stored if case == in_time} == {"reminder"}
    assert {step for case, step, _ in stored if case == late} == {"reminder", "urge", "overdue"}
    assert not app.get_case(in_time).overdue
    assert app.get_case(late).overdue


async def test_two_replicas_scanning_one_store_record_each_step_once(
    store: list[SupervisionApplication],
) -> None:
    first, second = store
    cases = [a_case_with_letter(first) for _ in range(30)]
    clock = Clock(midnight("2020-09-28") + timedelta(hours=1))
    replicas = [DeadlineScheduler(first, clock), DeadlineScheduler(second, clock)]

    changed = 0
    for now in ("2020-09-28", "2020-10-09", "2020-10-10", "2020-10-16", "2026-11-26"):
        clock.now = midnight(now) + timedelta(hours=1)
        results = await asyncio.gather(*(r.scan() for r in replicas for _ in range(2)))
        changed += sum(results)

    stored = steps_stored(first)
    assert set(stored.values()) == {1}
    assert Counter(step for _, step, _ in stored) == {
        "reminder": 30,
        "urge": 30,
        "overdue": 30,
        "escalate": 30,
    }
    # Each case changed at each of the four times by exactly one of the scans.
    assert changed == 4 * len(cases)
    assert all(second.get_case(c).overdue for c in cases)


async def test_the_steps_are_published_as_case_overdue_and_case_escalated(
    store: list[SupervisionApplication],
) -> None:
    app = store[0]
    case_id = a_case_with_letter(app, deadline=date(2020, 9, 30))
    await DeadlineScheduler(app, Clock(midnight("2026-11-26"))).scan()
    published = [
        contract
        for n in app.recorder.select_notifications(1, 1000)
        if (translated := to_contract(app.mapper.to_domain_event(n))) is not None
        for contract in [translated[1]]
        if isinstance(contract, CaseOverdueV1 | CaseEscalatedV1)
    ]
    overdue, escalations = published[2], [p for p in published if isinstance(p, CaseEscalatedV1)]
    assert isinstance(overdue, CaseOverdueV1)
    assert (overdue.case_id, overdue.deadline, overdue.overdue_at) == (
        case_id,
        date(2020, 9, 30),
        midnight("2020-10-01"),
    )
    assert overdue.issue_ids == app.get_case(case_id).issue_ids
    assert [(e.step, e.to_office) for e in escalations] == [
        ("reminder", None),
        ("urge", None),
        ("escalate", "yanbian"),
    ]


async def test_the_steps_the_scheduler_records_name_it_as_their_actor(
    store: list[SupervisionApplication],
) -> None:
    app = store[0]
    case_id = a_case_with_letter(app, deadline=date(2020, 9, 30))
    await DeadlineScheduler(app, Clock(midnight("2026-11-26"))).scan()

    trail = [
        (entry.event, entry.actor and (entry.actor.subject, entry.actor.office, entry.actor.role))
        for entry in app.audit_trail(case_id)
    ]
    scheduler = ("system:scheduler", "yanji", "system")
    assert trail == [
        ("Opened", None),  # saved by the test itself, as no request
        ("LetterIssued", None),
        ("Acknowledged", None),
        ("Escalated", scheduler),
        ("Escalated", scheduler),
        ("BecameOverdue", scheduler),
        ("Escalated", scheduler),
    ]
