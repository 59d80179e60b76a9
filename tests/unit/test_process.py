"""The upstream processor applies each upstream message once, with its position."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking

from shared.consumer import Delivered
from shared.contracts import Envelope, IssueClosedV1
from shared.eventstore import ServiceApplication
from shared.process import PolicyRefused, Upstream, UpstreamProcessor

TALLY_ID = uuid4()


class Tally(Aggregate):
    """A count of closed issues, with the day of the last one (a date field on purpose)."""

    @staticmethod
    def create_id() -> UUID:
        return TALLY_ID

    @event("Started")
    def __init__(self) -> None:
        self.closed: list[UUID] = []
        self.last_day: date | None = None

    @event("Counted")
    def count(self, issue_id: UUID, day: date) -> None:
        self.closed.append(issue_id)
        self.last_day = day


def policy(upstream: Upstream, processing: ProcessingEvent[UUID]) -> None:
    assert isinstance(upstream.event, IssueClosedV1)
    if upstream.event.office == "tumen":
        raise PolicyRefused("not counted here")
    tally: Tally = app.repository.get(TALLY_ID)
    tally.count(upstream.event.issue_id, upstream.event.closed_at.date())
    processing.collect_events(tally)


app: ServiceApplication


@pytest.fixture(autouse=True)
def application(tmp_path: Path):
    global app
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "a.db")}
    app = ServiceApplication(env)
    app.save(Tally())
    yield app
    app.close()


def closed(sequence: int, office: str = "yanji") -> Delivered:
    contract = IssueClosedV1(issue_id=uuid4(), office=office, closed_at=datetime.now(UTC))
    envelope = Envelope.wrap(str(uuid4()), datetime.now(UTC), contract.subject(office), contract)
    return Delivered(sequence, envelope, contract)


def test_each_message_once_and_dates_round_trip():
    processor = UpstreamProcessor(app, policy)
    told: list[int] = []
    app.saved_listeners.append(lambda: told.append(1))
    batch = [closed(1), closed(2), closed(3, office="tumen"), closed(4)]
    processor.apply(batch[:2], Tracking("INTAKE", 2))
    processor.apply(batch, Tracking("INTAKE", 4))  # overlaps: 1 and 2 are skipped
    processor.apply(batch, Tracking("INTAKE", 4))
    tally: Tally = app.repository.get(TALLY_ID)
    assert len(tally.closed) == 3
    assert tally.last_day == batch[3].contract.closed_at.date()  # type: ignore[union-attr]
    assert processor.max_tracking_id("INTAKE") == 4
    assert told == [1, 1]
