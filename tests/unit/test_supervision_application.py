"""Supervision's application: cases opened from upstream events once, letters numbered without
gaps or reuse, idempotent writes, refusals that store nothing, the published contracts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking

from services.supervision.application import (
    CaseFilter,
    CaseNotFound,
    IdempotencyConflict,
    SupervisionApplication,
)
from services.supervision.consumers import upstream_policy
from services.supervision.domain import (
    CaseRuleBroken,
    IllegalTransition,
    LetterRegister,
    SupervisionCase,
    case_id_for_outcome,
    case_id_for_referral,
)
from services.supervision.publishing import to_contract
from services.supervision.settings import SupervisionSettings
from shared.clock import CHINA, CalendarNotCovered
from shared.consumer import Delivered
from shared.contracts import (
    CaseEscalatedV1,
    CaseReopenedV1,
    CaseVerifiedV1,
    Contract,
    Envelope,
    IssueCallbackRecordedV1,
    IssueScreenedV1,
    LetterIssuedV1,
    MeetingConcludedV1,
    Outcome,
)
from shared.process import UpstreamProcessor
from tests.support.serving import serving
from tests.unit.conftest import IN_MEMORY

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=CHINA)


def anyone(_: SupervisionCase) -> None:
    """The application's guard when the caller may touch any case."""


@pytest.fixture
async def supervision() -> AsyncIterator[SupervisionApplication]:
    app = SupervisionApplication(env=IN_MEMORY)
    async with serving(app):
        yield app


def delivered(
    sequence: int, contract: Contract, office: str, event_id: str | None = None
) -> Delivered:
    envelope = Envelope.wrap(
        event_id or str(uuid4()), datetime.now(UTC), contract.subject(office), contract
    )
    return Delivered(sequence, envelope, contract)


def conclusion(*departments: str, offices: tuple[str, ...] = ("yanji",)) -> MeetingConcludedV1:
    return MeetingConcludedV1(
        meeting_id=uuid4(),
        offices=list(offices),
        kind="thematic",
        title="老旧小区改造专题协商会",
        concluded_at=datetime(2020, 6, 30, 16, 0, tzinfo=CHINA),
        outcomes=[
            Outcome(
                outcome_id=uuid4(),
                issue_ids=[uuid4(), uuid4()],
                recommendation=f"请{department}限期整改",
                department=department,
                deadline=date(2020, 9, 30),
            )
            for department in departments
        ],
    )


def referral(issue_id: UUID | None = None, decision: str = "refer") -> IssueScreenedV1:
    return IssueScreenedV1(
        issue_id=issue_id or uuid4(),
        office="tumen",
        decision=decision,  # type: ignore[arg-type]
        screened_at=datetime(2020, 7, 9, 10, 0, tzinfo=CHINA),
        screened_by="tumen-leader",
        title="农贸市场周边占道经营",
        category="城市管理",
        department="图们市城市管理局" if decision == "refer" else None,
        deadline=date(2020, 8, 31) if decision == "refer" else None,
    )


def all_cases(app: SupervisionApplication) -> list[SupervisionCase]:
    return app.list_cases(CaseFilter(), 1, 200)[0]


async def a_case(app: SupervisionApplication, office: str = "yanji") -> UUID:
    event = conclusion("延吉市住房和城乡建设局", offices=(office,))
    processor = UpstreamProcessor(app, upstream_policy(app))
    position = (processor.max_tracking_id("MEETINGS") or 0) + 1
    processor.apply([delivered(position, event, office)], Tracking("MEETINGS", position))
    return case_id_for_outcome(event.outcomes[0].outcome_id)


async def issue(
    app: SupervisionApplication,
    case_id: UUID,
    issued_at: datetime = datetime(2020, 7, 2, 9, 0, tzinfo=CHINA),
    deadline: date | None = date(2020, 9, 30),
    working_days: int | None = None,
    idempotency: tuple[str, str] | None = None,
):
    return await app.issue_letter(
        case_id, "限期修复路灯", deadline, working_days, issued_at, NOW, anyone, idempotency
    )


async def accept_the_work(app: SupervisionApplication, case_id: UUID) -> None:
    """The department signs, reports the work done, and the office accepts it."""
    day = datetime(2020, 7, 3, 9, 0, tzinfo=CHINA)
    await app.acknowledge(case_id, day, NOW, anyone)
    await app.report_completion(case_id, "已修复", day, NOW, anyone)
    await app.verify(case_id, day, NOW, anyone)


async def test_each_outcome_opens_one_case_of_the_organising_office(
    supervision: SupervisionApplication,
) -> None:
    processor = UpstreamProcessor(supervision, upstream_policy(supervision))
    event = conclusion("延吉市住建局", "延吉市城管局", offices=("yanji", "yanbian"))
    processor.apply([delivered(1, event, "yanji")], Tracking("MEETINGS", 1))

    cases = {c.id: c for c in all_cases(supervision)}
    assert set(cases) == {case_id_for_outcome(o.outcome_id) for o in event.outcomes}
    for outcome in event.outcomes:
        case = cases[case_id_for_outcome(outcome.outcome_id)]
        assert (case.office, case.origin, case.meeting_id) == ("yanji", "outcome", event.meeting_id)
        assert (case.department, case.deadline) == (outcome.department, outcome.deadline)
        assert (case.requirements, case.issue_ids) == (outcome.recommendation, outcome.issue_ids)
        assert case.opened_at == event.concluded_at


async def test_a_conclusion_received_again_at_a_new_position_opens_no_second_case(
    supervision: SupervisionApplication,
) -> None:
    processor = UpstreamProcessor(supervision, upstream_policy(supervision))
    event = conclusion("延吉市住建局")
    first = delivered(1, event, "yanji", event_id="meeting-event-1")
    processor.apply([first], Tracking("MEETINGS", 1))
    processor.apply([first], Tracking("MEETINGS", 1))  # redelivered
    again = delivered(7, event, "yanji", event_id="meeting-event-1")  # a restarted relay
    processor.apply([again], Tracking("MEETINGS", 7))

    (case,) = all_cases(supervision)
    assert case.version == 1
    assert processor.max_tracking_id("MEETINGS") == 7


async def test_a_refer_screening_opens_a_case_and_other_decisions_none(
    supervision: SupervisionApplication,
) -> None:
    processor = UpstreamProcessor(supervision, upstream_policy(supervision))
    refer = referral()
    messages = [
        delivered(1, referral(decision="topic"), "tumen"),
        delivered(2, refer, "tumen", event_id="screened-1"),
        delivered(3, refer, "tumen", event_id="screened-1"),  # the same event again
    ]
    processor.apply(messages, Tracking("INTAKE", 3))

    (case,) = all_cases(supervision)
    assert case.id == case_id_for_referral(refer.issue_id, "screened-1")
    assert (case.office, case.origin, case.issue_ids) == ("tumen", "referral", [refer.issue_id])
    assert (case.department, case.deadline, case.requirements) == (
        "图们市城市管理局",
        date(2020, 8, 31),
        "农贸市场周边占道经营",
    )


async def test_a_re_referral_after_the_issue_was_reopened_opens_a_new_case(
    supervision: SupervisionApplication,
) -> None:
    processor = UpstreamProcessor(supervision, upstream_policy(supervision))
    issue_id = uuid4()
    processor.apply(
        [delivered(1, referral(issue_id), "tumen", "screened-1")], Tracking("INTAKE", 1)
    )
    processor.apply(
        [delivered(5, referral(issue_id), "tumen", "screened-2")], Tracking("INTAKE", 5)
    )
    assert len(all_cases(supervision)) == 2


async def test_letters_are_numbered_per_office_and_year_in_the_offices_format(
    supervision: SupervisionApplication,
) -> None:
    yanji = [await a_case(supervision, "yanji") for _ in range(2)]
    yanbian = await a_case(supervision, "yanbian")
    numbers = [
        (await issue(supervision, yanji[0]))[1].number,
        (await issue(supervision, yanbian))[1].number,
        (await issue(supervision, yanji[1]))[1].number,
    ]
    assert numbers == ["延市政协督〔2020〕1号", "延州政协督〔2020〕1号", "延市政协督〔2020〕2号"]
    with pytest.raises(CaseNotFound):  # a letter register's id is no case
        supervision.get_case(LetterRegister.create_id("yanji", 2020))


async def test_the_letters_year_is_the_year_in_china(supervision: SupervisionApplication) -> None:
    case_id = await a_case(supervision)
    # 17:30 UTC on New Year's Eve is already 1 January 2021 in China.
    _, letter, _ = await issue(
        supervision,
        case_id,
        issued_at=datetime(2020, 12, 31, 17, 30, tzinfo=UTC),
        deadline=date(2021, 1, 30),
    )
    assert (letter.year, letter.number) == (2021, "延市政协督〔2021〕1号")


async def test_an_office_prefix_comes_from_the_settings(
    supervision: SupervisionApplication,
) -> None:
    supervision.config = SupervisionSettings(letter_prefixes={"yanji": "延吉政协督"})
    _, letter, _ = await issue(supervision, await a_case(supervision))
    assert letter.number == "延吉政协督〔2020〕1号"


async def test_letters_issued_at_once_take_every_number_once(
    supervision: SupervisionApplication,
) -> None:
    cases = [await a_case(supervision) for _ in range(20)]
    results = await asyncio.gather(*(issue(supervision, c) for c in cases))
    assert sorted(letter.sequence for _, letter, _ in results) == list(range(1, 21))
    assert len({letter.number for _, letter, _ in results}) == 20


async def test_a_deadline_in_working_days_counts_the_national_day_holiday(
    supervision: SupervisionApplication,
) -> None:
    case_id = await a_case(supervision)
    case, letter, _ = await issue(
        supervision,
        case_id,
        issued_at=datetime(2020, 9, 25, 9, 0, tzinfo=CHINA),
        deadline=None,
        working_days=5,
    )
    assert letter.deadline == case.deadline == date(2020, 10, 9)


async def test_a_refused_letter_stores_nothing_and_takes_no_number(
    supervision: SupervisionApplication,
) -> None:
    case_id = await a_case(supervision)
    with pytest.raises(CalendarNotCovered):
        await issue(
            supervision,
            case_id,
            issued_at=datetime(2026, 12, 20, 9, 0, tzinfo=CHINA),
            deadline=None,
            working_days=15,
        )
    with pytest.raises(CaseRuleBroken):
        await issue(supervision, case_id, deadline=date(2020, 7, 1))
    assert supervision.get_case(case_id).version == 1
    _, letter, _ = await issue(supervision, case_id)
    assert letter.sequence == 1


async def test_a_retried_request_returns_the_first_answer_and_another_with_its_key_is_refused(
    supervision: SupervisionApplication,
) -> None:
    case_id = await a_case(supervision)
    first = await issue(supervision, case_id, idempotency=("k1", "letter-a"))
    retry = await issue(supervision, case_id, idempotency=("k1", "letter-a"))
    assert first[2] is True and retry[2] is False
    assert retry[1] == first[1]
    assert len(supervision.get_case(case_id).letters) == 1
    with pytest.raises(IdempotencyConflict):
        await issue(supervision, case_id, idempotency=("k1", "letter-b"))


async def test_an_illegal_transition_stores_nothing(supervision: SupervisionApplication) -> None:
    case_id = await a_case(supervision)

    with pytest.raises(IllegalTransition, match="opened"):
        await supervision.verify(case_id, NOW, NOW, anyone)
    assert supervision.get_case(case_id).version == 1


async def test_every_step_is_published_as_its_contract(supervision: SupervisionApplication) -> None:
    case_id = await a_case(supervision)
    await issue(supervision, case_id, idempotency=("letter", "x"))

    day = datetime(2020, 7, 3, 9, 0, tzinfo=CHINA)
    await supervision.acknowledge(case_id, day, NOW, anyone)
    await supervision.report_progress(case_id, "已排查", day, NOW, anyone)
    await supervision.record_follow_up(case_id, "inspection", day, ["金委员"], "", NOW, anyone)
    await supervision.report_completion(case_id, "已修复", day, NOW, anyone)
    await supervision.verify(case_id, day, NOW, anyone)

    stored = [
        supervision.mapper.to_domain_event(n)
        for n in supervision.recorder.select_notifications(1, 100)
    ]
    published = [t for e in stored if (t := to_contract(e)) is not None]
    assert [type(c).__name__ for _, c in published] == [
        "CaseOpenedV1",
        "LetterIssuedV1",
        "CaseAcknowledgedV1",
        "ProgressReportedV1",
        "FollowUpRecordedV1",
        "CompletionReportedV1",
        "CaseVerifiedV1",
    ]
    assert {office for office, _ in published} == {"yanji"}
    letter = published[1][1]
    assert isinstance(letter, LetterIssuedV1) and letter.number == "延市政协督〔2020〕1号"
    verified = published[-1][1]
    assert isinstance(verified, CaseVerifiedV1)
    assert verified.issue_ids == supervision.get_case(case_id).issue_ids
    # Kept to itself: the letter register's two events and the remembered Idempotency-Key.
    assert len(stored) - len(published) == 3


async def test_an_unsatisfied_callback_sends_the_case_back_and_up_to_the_prefecture(
    supervision: SupervisionApplication,
) -> None:
    case_id = await a_case(supervision)
    await issue(supervision, case_id)
    await accept_the_work(supervision, case_id)
    before = supervision.recorder.max_notification_id() or 0
    called = IssueCallbackRecordedV1(
        issue_id=supervision.get_case(case_id).issue_ids[0],
        office="yanji",
        reached=True,
        satisfaction="unsatisfied",
        called_at=datetime(2020, 7, 20, 10, 0, tzinfo=CHINA),
        reopened_cases=[case_id],
    )
    processor = UpstreamProcessor(supervision, upstream_policy(supervision))
    processor.apply([delivered(1, called, "yanji")], Tracking("INTAKE", 1))

    published = [
        t[1]
        for n in supervision.recorder.select_notifications(before + 1, 100)
        if (t := to_contract(supervision.mapper.to_domain_event(n))) is not None
    ]
    reopened, escalated = published
    assert isinstance(reopened, CaseReopenedV1) and reopened.cause == "callback"
    assert isinstance(escalated, CaseEscalatedV1)
    assert (escalated.step, escalated.to_office) == ("escalate", "yanbian")
    assert escalated.deadline == reopened.deadline
    assert supervision.get_case(case_id).status == "reopened"


async def test_two_replicas_issuing_letters_at_once_on_one_store_take_every_number_once(
    tmp_path,
) -> None:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "supervision.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "10",
    }
    replicas = [SupervisionApplication(env=dict(env)) for _ in range(2)]
    commits = [asyncio.create_task(r.group_commit.run()) for r in replicas]
    try:
        cases = [await a_case(replicas[0]) for _ in range(16)]
        results = await asyncio.gather(
            *(issue(replicas[n % 2], case_id) for n, case_id in enumerate(cases))
        )
        assert sorted(letter.sequence for _, letter, _ in results) == list(range(1, 17))
        assert {len(replicas[1].get_case(c).letters) for c in cases} == {1}
    finally:
        for task in commits:
            task.cancel()
        await asyncio.gather(*commits, return_exceptions=True)
        for replica in replicas:
            replica.close()


async def test_a_departments_inbox_pages_open_cases_nearest_deadline_first(
    supervision: SupervisionApplication,
) -> None:
    late, soon, done = [await a_case(supervision) for _ in range(3)]
    await issue(supervision, late, deadline=date(2020, 9, 30))
    await issue(supervision, soon, deadline=date(2020, 8, 14))
    await issue(supervision, done, deadline=date(2020, 7, 31))
    await accept_the_work(supervision, done)

    def ids(page: int, sort: str) -> list[UUID]:
        return [c.id for c in supervision.list_cases(CaseFilter(), page, 2, sort)[0]]

    assert ids(1, "deadline") + ids(2, "deadline") == [soon, late, done]
