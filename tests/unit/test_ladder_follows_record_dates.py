"""The deadline ladder follows the dates the records carry, whatever order they were typed in:
a back-dated record that shows a case was done in time retracts what the scan concluded, and
the read side's figures, as-of figures and timeline agree with the retraction."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projections.queries import drill_down, recount, statistics
from services.projections.views import ProjectionView, open_projection_view
from services.supervision.application import SupervisionApplication
from services.supervision.domain import (
    Ladder,
    LadderStep,
    SupervisionCase,
    case_id_for_outcome,
)
from services.supervision.publishing import to_contract
from shared.clock import CHINA
from shared.consumer import Delivered
from shared.contracts import (
    CaseEscalatedV1,
    CaseOverdueV1,
    CaseStepsRetractedV1,
    Contract,
    Envelope,
    IssueResolvedV1,
    IssueSubmittedV1,
)

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=CHINA)
LADDER = Ladder(reminder_working_days=3, escalate_after_working_days=5, escalate_to="yanbian")
ISSUE = UUID("5a0c1f3e-0000-4000-8000-000000000001")

Record = Callable[[SupervisionCase], None]


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=CHINA)


def opened(deadline: date = date(2020, 12, 31)) -> SupervisionCase:
    """An outcome's case, opened with the outcome's deadline."""
    return SupervisionCase(
        id=case_id_for_outcome(UUID("5a0c1f3e-0000-4000-8000-0000000000aa")),
        office="yanji",
        origin="outcome",
        meeting_id=UUID("5a0c1f3e-0000-4000-8000-0000000000bb"),
        outcome_id=UUID("5a0c1f3e-0000-4000-8000-0000000000aa"),
        issue_ids=[ISSUE],
        department="延吉市住房和城乡建设局",
        deadline=deadline,
        requirements="尽快修复小区路灯",
        opened_at=at("2020-10-10"),
    )


def scan(case: SupervisionCase) -> None:
    case.supervise(NOW, LADDER)


# The records of the trial: a letter (deadline 5 Nov) and a completion on 3 Nov, back-dated.
RECORDS: list[Record] = [
    lambda c: c.issue_letter(
        "延市政协督〔2020〕1号", 2020, 1, date(2020, 11, 5), "限期修复", at("2020-10-20"), NOW
    ),
    lambda c: c.acknowledge(at("2020-10-21"), NOW),
    lambda c: c.report_completion("路灯已修复", at("2020-11-03"), NOW),
    lambda c: c.verify(at("2020-11-04"), NOW),
]


def typed(scans_before: set[int]) -> SupervisionCase:
    """The records typed in date order, the scan running before those in `scans_before`
    (the index len(RECORDS) is a scan after the last), and once more at the end."""
    case = opened()
    for i, record in enumerate(RECORDS):
        if i in scans_before:
            scan(case)
        record(case)
    scan(case)
    return case


def standing(case: SupervisionCase) -> list[LadderStep]:
    return sorted(case.ladder_steps, key=lambda s: (s.at, s.step))


SCAN_POSITIONS = [set(p) for n in range(4) for p in itertools.combinations(range(4), n)]


@pytest.mark.parametrize("scans_before", SCAN_POSITIONS, ids=str)
def test_a_case_done_in_time_ends_not_overdue_wherever_the_scan_ran(scans_before: set[int]) -> None:
    case = typed(scans_before)
    reference = typed(set())

    assert not case.overdue
    assert standing(case) == standing(reference)
    # Only the reminder of 2 Nov fell due before the completion of 3 Nov.
    assert [(s.step, s.deadline) for s in standing(case)] == [("reminder", date(2020, 11, 5))]


def test_the_scan_before_the_letter_is_retracted_by_a_new_event_and_history_is_kept() -> None:
    case = typed({0})
    names = [type(e).__name__ for e in case.collect_events()]

    # The scan's reminder, 催办, overdue and escalation of the opening deadline stay stored.
    assert names.count("BecameOverdue") == 1 and names.count("Escalated") >= 3
    assert names.index("StepsRetracted") == names.index("LetterIssued") + 1
    retracted = [s for s in case.history if s.event == "steps_retracted"]
    assert len(retracted) == 1 and "overdue" in retracted[0].note
    # Dated by the letter that shows the steps never fell due, never after them.
    assert retracted[0].at == at("2020-10-20")


# --- any records, any scan positions -------------------------------------------------------

day_offsets = st.integers(0, 120)


@st.composite
def histories(draw: st.DrawFn) -> tuple[date, list[Record]]:
    """A case's records in date order: letter, acknowledgement, maybe completion, maybe a
    send-back with a new deadline and another completion."""
    start = date(2020, 10, 10)
    opening_deadline = start + timedelta(days=draw(day_offsets))
    day = start + timedelta(days=draw(st.integers(0, 90)))
    records: list[Record] = []

    def letter(issued: date, deadline: date) -> Record:
        return lambda c: c.issue_letter(
            "延市政协督〔2020〕1号", 2020, 1, deadline, "限期修复", at(str(issued)), NOW
        )

    records.append(letter(day, day + timedelta(days=draw(day_offsets))))
    day += timedelta(days=draw(st.integers(0, 5)))
    records.append(lambda c, d=day: c.acknowledge(at(str(d)), NOW))
    if draw(st.booleans()):
        day += timedelta(days=draw(day_offsets))
        records.append(lambda c, d=day: c.report_completion("已办", at(str(d)), NOW))
        if draw(st.booleans()):
            day += timedelta(days=draw(st.integers(0, 20)))
            deadline = day + timedelta(days=draw(day_offsets))
            records.append(
                lambda c, d=day, dl=deadline: c.send_back("未办好", dl, at(str(d), 11), NOW)
            )
            if draw(st.booleans()):
                day += timedelta(days=draw(day_offsets))
                records.append(lambda c, d=day: c.report_completion("已办", at(str(d), 12), NOW))
    return opening_deadline, records


@settings(max_examples=150, deadline=None)
@given(
    history=histories(),
    scans=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3000)), max_size=8),
)
def test_the_standing_ladder_depends_only_on_the_records_never_on_when_the_scan_ran(
    history: tuple[date, list[Record]], scans: list[tuple[int, int]]
) -> None:
    opening_deadline, records = history
    reference = opened(opening_deadline)
    for record in records:
        record(reference)
    scan(reference)

    case = opened(opening_deadline)
    # Scans at moments that only move forward (the real clock), between any two records.
    moments = iter(sorted(at("2020-10-10") + timedelta(days=n) for _, n in scans))
    positions = sorted(position for position, _ in scans)
    for i, record in enumerate(records):
        while positions and positions[0] <= i:
            positions.pop(0)
            case.supervise(next(moments), LADDER)
        record(case)
    for moment in moments:
        case.supervise(moment, LADDER)
    scan(case)

    assert standing(case) == standing(reference)
    assert case.overdue == reference.overdue


# --- through the read side -------------------------------------------------------------------


def published(case: SupervisionCase) -> list[Contract]:
    contracts = []
    for domain_event in case.collect_events():
        found = to_contract(domain_event)
        if found is not None:
            contracts.append(found[1])
    return contracts


def with_intake(contracts: list[Contract], case: SupervisionCase) -> list[Contract]:
    """The case's events and intake's: the issue, resolved when the case was verified."""
    assert case.verified_at is not None
    return [
        IssueSubmittedV1(
            issue_id=ISSUE,
            office="yanji",
            title="小区路灯损坏",
            description="路灯夜间不亮",
            category="城市管理",
            submitted_at=at("2020-09-01"),
        ),
        *contracts,
        IssueResolvedV1(
            issue_id=ISSUE,
            office="yanji",
            resolved_at=case.verified_at,
            via="case",
            case_id=case.id,
        ),
    ]


def apply_all(view: ProjectionView, contracts: list[Contract], first: str | None) -> None:
    """One message at a time, each stream in its own order (as JetStream keeps it): as they
    were stored, or all of stream `first` before the other."""
    messages = [
        (c.service.upper(), Envelope.wrap(f"event-{n}", NOW, c.subject("yanji"), c), c)
        for n, c in enumerate(contracts)
    ]
    if first is not None:
        messages.sort(key=lambda m: m[0] != first)  # stable: each stream keeps its order
    positions: dict[str, int] = {}
    for stream, envelope, contract in messages:
        positions[stream] = positions.get(stream, 0) + 1
        message = Delivered(positions[stream], envelope, contract)
        view.apply([message], Tracking(stream, positions[stream]))


@pytest.fixture
def views() -> Iterator[Callable[[], ProjectionView]]:
    with tempfile.TemporaryDirectory() as folder:
        made: list[ProjectionView] = []

        def make() -> ProjectionView:
            made.append(open_projection_view(str(Path(folder) / f"{len(made)}.sqlite")))
            return made[-1]

        yield make
        for view in made:
            view.datastore.close()


def steps_of(view: ProjectionView, until: str | None = None) -> list[str]:
    """The issue's timeline, without the retraction itself (which only one history has)."""
    issue = view.issue(str(ISSUE), until)
    assert issue is not None
    return [s["step"] for s in issue["timeline"] if s["step"] != "case_steps_retracted"]


def what_the_read_side_says(view: ProjectionView) -> dict[str, object]:
    days = [None, date(2020, 11, 1), date(2020, 12, 31), date(2021, 1, 1), date(2021, 6, 30)]
    years = (2020, 2021)
    return {
        "figures": [statistics(view, y, ["yanji"], False, d)["total"] for y in years for d in days],
        "recount": [recount(view, y) for y in years],
        "overdue": [drill_down(view, "cases_overdue", y, None, None, None, 9, 0)[0] for y in years],
        "status": view.derive("issue", str(ISSUE)).row,
        "timeline": steps_of(view),
        "timeline_as_of": steps_of(view, "2021-01-10T00:00:00.000000+08:00"),
        "case": view.derive("case", str(opened().id)).row,
    }


@pytest.mark.parametrize("scans_before", [{0}, {1}, {2}, {0, 2, 3}], ids=str)
@pytest.mark.parametrize("first", [None, "INTAKE", "SUPERVISION"])
def test_the_read_side_agrees_with_the_retraction_in_any_order_of_the_streams(
    views: Callable[[], ProjectionView], scans_before: set[int], first: str | None
) -> None:
    reference_case = typed(set())
    reference = views()
    apply_all(reference, with_intake(published(reference_case), reference_case), None)
    expected = what_the_read_side_says(reference)

    case = typed(scans_before)
    view = views()
    apply_all(view, with_intake(published(case), case), first)

    assert what_the_read_side_says(view) == expected
    assert expected["status"]["status"] == "resolved"  # type: ignore[index]
    assert {f["cases_overdue"] for f in expected["figures"]} == {0}  # type: ignore[attr-defined]
    assert "case_overdue" not in expected["timeline"]  # type: ignore[operator]
    # Cause before effect at the same instant: the verification resolves the issue.
    assert expected["timeline"][-2:] == ["case_verified", "resolved"]  # type: ignore[index]


def test_a_stored_retraction_is_published_as_its_contract(tmp_path: Path) -> None:
    app = SupervisionApplication(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s")}
    )
    try:
        app.save(typed({0}))
        stored = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(1, 100)]
        contracts = [c for _, c in filter(None, map(to_contract, stored))]
    finally:
        app.close()
    (retraction,) = [c for c in contracts if isinstance(c, CaseStepsRetractedV1)]
    overdue = next(c for c in contracts if isinstance(c, CaseOverdueV1))
    assert retraction.retracted_at == at("2020-10-20")
    assert ("overdue", overdue.deadline, overdue.overdue_at) in [
        (s.step, s.deadline, s.at) for s in retraction.steps
    ]
    escalated = {c.deadline for c in contracts if isinstance(c, CaseEscalatedV1)}
    assert escalated == {date(2020, 12, 31), date(2020, 11, 5)}  # the scan's, then the reminder
