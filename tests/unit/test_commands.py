"""shared.commands: fingerprints that stay what the stores hold, and a command that lost a race
with a concurrent change decided again, then given up with the error each service gave."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from services.intake.application import IntakeApplication
from services.meetings.application import MeetingsApplication
from services.meetings.domain import MeetingConflict
from services.supervision.application import SupervisionApplication
from services.supervision.schemas import AcknowledgementRequest, ReportRequest
from shared.commands import (
    CONFLICT_RETRIES,
    body_command,
    body_fingerprint,
    command_of,
    decide_and_save,
    fingerprint,
    retry_on_conflict,
    retry_on_conflict_sync,
)
from shared.eventstore import ServiceApplication
from tests.unit.conftest import IN_MEMORY
from tests.unit.test_supervision_application import a_case, issue


class Counter(Aggregate):
    def __init__(self) -> None:
        self.count = 0

    @event("Counted")
    def add_one(self) -> None:
        self.count += 1


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- fingerprints ------------------------------------------------------------------------------


def test_a_fingerprint_does_not_depend_on_the_order_of_a_mappings_keys() -> None:
    assert fingerprint("plan", {"title": "路灯", "venue": "议事厅"}) == fingerprint(
        "plan", {"venue": "议事厅", "title": "路灯"}
    )
    assert fingerprint("plan", {"title": "路灯"}) != fingerprint("plan", {"title": "路面"})


def test_a_fingerprint_is_the_digest_the_stores_already_hold() -> None:
    # Meetings' form (64 hex digits) and intake's (the first 32): a retry sent after an
    # upgrade must still match what the aggregate remembered.
    text = '["close", {"args": [null, "2020-07-03 09:00:00+00:00", "议事厅"]}]'
    at = datetime(2020, 7, 3, 9, 0, tzinfo=UTC)
    assert fingerprint("close", {"args": [None, at, "议事厅"]}) == sha256(text)
    assert (
        fingerprint("screen", "topic", None, digits=32) == sha256('["screen", "topic", null]')[:32]
    )
    assert command_of("k1", "screen", digits=32) == ("k1", sha256('["screen"]')[:32])
    assert command_of(None, "screen") is None


def test_a_body_fingerprint_counts_only_the_fields_the_client_sent() -> None:
    empty = AcknowledgementRequest.model_validate({})
    explicit = AcknowledgementRequest.model_validate({"acknowledged_at": None})
    assert body_fingerprint("acknowledgement", empty) == sha256("acknowledgement:{}")
    assert body_fingerprint("acknowledgement", explicit) == sha256(
        'acknowledgement:{"acknowledged_at":null}'
    )
    report = ReportRequest.model_validate({"note": "已修复"})
    assert body_command("k1", "completion", report) == (
        "k1",
        sha256('completion:{"note":"已修复"}'),
    )
    assert body_command(None, "completion", report) is None


# --- the conflict retry ------------------------------------------------------------------------


@pytest.fixture
def store() -> Iterator[ServiceApplication]:
    app = ServiceApplication(env=IN_MEMORY)
    yield app
    app.close()


def saving(app: ServiceApplication):
    async def save(*aggregates: Aggregate) -> None:
        app.save(*aggregates)

    return save


def a_rival_counts(app: ServiceApplication, counter_id: UUID) -> None:
    """Another writer stores a new version between our load and our save."""
    rival = app.repository.get(counter_id)
    rival.add_one()
    app.save(rival)


async def test_a_command_that_lost_a_race_is_decided_again_on_what_is_stored(
    store: ServiceApplication,
) -> None:
    counter = Counter()
    store.save(counter)
    seen: list[int] = []

    def decide() -> tuple[int, list[Aggregate]]:
        mine = store.repository.get(counter.id)
        seen.append(mine.count)
        if len(seen) == 1:
            a_rival_counts(store, counter.id)
        mine.add_one()
        return mine.count, [mine]

    assert await decide_and_save(saving(store), decide) == 2
    assert seen == [0, 1]
    assert store.repository.get(counter.id).count == 2


async def test_a_command_that_always_loses_gives_up_with_the_stores_refusal(
    store: ServiceApplication,
) -> None:
    counter = Counter()
    store.save(counter)
    attempts = 0

    def decide() -> tuple[None, list[Aggregate]]:
        nonlocal attempts
        attempts += 1
        mine = store.repository.get(counter.id)
        a_rival_counts(store, counter.id)
        mine.add_one()
        return None, [mine]

    with pytest.raises(IntegrityError):
        await decide_and_save(saving(store), decide)
    assert attempts == CONFLICT_RETRIES + 1
    # Only the rivals' changes were stored.
    assert store.repository.get(counter.id).count == attempts


async def test_a_decision_that_changed_nothing_saves_nothing() -> None:
    saves = 0

    async def save(*_: Aggregate) -> None:
        nonlocal saves
        saves += 1

    counter = Counter()
    counter.collect_events()
    assert await decide_and_save(save, lambda: ("same", [counter])) == "same"
    assert saves == 0


async def test_only_a_conflict_is_retried() -> None:
    attempts = 0

    async def refused() -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("a rule, not a race")

    with pytest.raises(ValueError, match="a rule"):
        await retry_on_conflict(refused)
    assert attempts == 1


def test_a_command_in_one_thread_is_retried_the_same_way() -> None:
    outcomes: list[Exception | str] = [IntegrityError("lost"), IntegrityError("lost"), "stored"]

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry_on_conflict_sync(attempt) == "stored"
    last = IntegrityError("still lost")

    def always() -> str:
        raise last

    with pytest.raises(IntegrityError) as raised:
        retry_on_conflict_sync(always, retries=2)
    assert raised.value is last


# --- each service gives up as it did ---------------------------------------------------------


def always_conflicting(counter: list[int]):
    async def save(*_: Aggregate) -> None:
        counter.append(1)
        raise IntegrityError("a concurrent change")

    return save


async def test_intake_gives_up_on_a_contended_issue_with_the_stores_refusal(
    intake: IntakeApplication,
) -> None:
    issue, _ = await intake.submit_issue(
        "yanji", "路灯", "坏了", "城市管理", datetime(2020, 7, 3, 9, 0, tzinfo=UTC)
    )
    tried: list[int] = []
    intake.group_commit.save = always_conflicting(tried)  # type: ignore[method-assign]
    with pytest.raises(IntegrityError):
        await intake.screen_issue(issue.id, "rejected", "leader", reason="重复")
    assert len(tried) == CONFLICT_RETRIES + 1


async def test_meetings_gives_up_with_a_conflict_to_retry() -> None:
    app = MeetingsApplication(env=IN_MEMORY, offices=["yanji"])
    tried: list[int] = []
    app.group_commit.save = always_conflicting(tried)  # type: ignore[method-assign]
    try:
        with pytest.raises(MeetingConflict, match="too many concurrent changes"):
            await app.record_department("yanji", "住建局", "key-1")
    finally:
        app.close()
    assert len(tried) == CONFLICT_RETRIES + 1


async def test_supervision_tries_its_contended_letter_register_fifty_times() -> None:
    app = SupervisionApplication(env=IN_MEMORY)
    try:
        case_id = await a_case(app)  # opened by its upstream processor, not a request
        tried: list[int] = []
        app.group_commit.save = always_conflicting(tried)  # type: ignore[method-assign]
        with pytest.raises(IntegrityError):
            await issue(app, case_id)
    finally:
        app.close()
    assert len(tried) == app.conflict_retries + 1 == 51
