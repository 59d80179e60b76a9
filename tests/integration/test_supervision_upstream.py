"""Supervision opens its cases from meetings' and intake's streams on a real nats-server:
once per outcome and per `refer`, whatever is redelivered or published again."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID, uuid4

from fastapi import FastAPI
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.supervision.application import CaseFilter, SupervisionApplication
from services.supervision.domain import case_id_for_outcome, case_id_for_referral
from services.supervision.main import create_app
from services.supervision.settings import SupervisionSettings
from shared.clock import CHINA
from shared.contracts import (
    CaseOpenedV1,
    Contract,
    Envelope,
    IssueScreenedV1,
    MeetingConcludedV1,
    Outcome,
    decode,
)
from shared.embedded import EmbeddedNats
from shared.settings import Settings
from shared.streams import INTAKE_STREAM, MEETINGS_STREAM, SUPERVISION_STREAM
from tests.support.streams import publish_as_relay, read_stream
from tests.support.waiting import wait_until


@contextlib.asynccontextmanager
async def running_supervision(
    nats: EmbeddedNats,
    data_dir: Path,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    scan_interval: float = 60.0,
) -> AsyncIterator[FastAPI]:
    """The supervision service as `main` composes it, with its lifespan running."""
    settings = Settings(nats_url=nats.url, data_dir=data_dir)
    await nats.set_up(settings)
    app = create_app(
        settings,
        SupervisionSettings(scan_interval_seconds=scan_interval),
        clock=clock,
    )
    async with app.router.lifespan_context(app):
        yield app


async def publish(
    js: JetStreamContext, contract: Contract, office: str, event_id: str, msg_id: str | None
) -> int:
    """Publish an upstream event as its service's relay would; returns its stream sequence."""
    envelope = Envelope.wrap(event_id, datetime.now(UTC), contract.subject(office), contract)
    return await publish_as_relay(js, contract.subject(office), envelope.to_bytes(), msg_id, None)


def conclusion(offices: list[str], *departments: str) -> MeetingConcludedV1:
    return MeetingConcludedV1(
        meeting_id=uuid4(),
        offices=offices,
        kind="onsite",
        title="河南街道背街小巷整治现场协商会",
        concluded_at=datetime(2020, 6, 30, 16, 0, tzinfo=CHINA),
        outcomes=[
            Outcome(
                outcome_id=uuid4(),
                issue_ids=[uuid4()],
                recommendation=f"请{department}在雨季前完成整治",
                department=department,
                deadline=date(2020, 8, 31),
            )
            for department in departments
        ],
    )


def referral(issue_id: UUID) -> IssueScreenedV1:
    return IssueScreenedV1(
        issue_id=issue_id,
        office="tumen",
        decision="refer",
        screened_at=datetime(2020, 7, 9, 10, 0, tzinfo=CHINA),
        screened_by="tumen-leader",
        title="农贸市场周边占道经营",
        category="城市管理",
        department="图们市城市管理局",
        deadline=date(2020, 8, 31),
    )


def cases_of(app: FastAPI) -> dict[UUID, object]:
    supervision: SupervisionApplication = app.state.supervision
    return {c.id: c for c in supervision.list_cases(CaseFilter(), 1, 200)[0]}


async def opened_on_stream(js: JetStreamContext) -> list[UUID]:
    """The case ids of the CaseOpened events on the SUPERVISION stream, in order."""
    found = []
    for message in await read_stream(js, SUPERVISION_STREAM):
        _, contract = decode(message.data)
        if isinstance(contract, CaseOpenedV1):
            found.append(contract.case_id)
    return found


async def test_cases_open_once_from_both_streams_whatever_is_delivered_again(
    nats_server: EmbeddedNats, nats_client: Client, tmp_path: Path
) -> None:
    js = nats_client.jetstream()
    meeting = conclusion(["yanji", "yanbian"], "延吉市住房和城乡建设局", "延吉市城市管理局")
    issue_id = uuid4()
    screened = referral(issue_id)
    expected = {
        *(case_id_for_outcome(o.outcome_id) for o in meeting.outcomes),
        case_id_for_referral(issue_id, "intake-event-1"),
    }

    async with running_supervision(nats_server, tmp_path / "data") as app:
        first = await publish(js, meeting, "yanji", "meetings-event-1", "meetings-event-1")
        # Within the duplicate window the server drops the same message id.
        assert await publish(js, meeting, "yanji", "meetings-event-1", "meetings-event-1") == first
        await publish(js, screened, "tumen", "intake-event-1", "intake-event-1")
        await wait_until(lambda: set(cases_of(app)) == expected, what="three cases")

        # A restarted relay, the window past: the same events at new stream sequences.
        again = await publish(js, meeting, "yanji", "meetings-event-1", None)
        assert again > first
        await publish(js, screened, "tumen", "intake-event-1", None)
        supervision: SupervisionApplication = app.state.supervision
        await wait_until(
            lambda: supervision.recorder.max_tracking_id("MEETINGS") == again,
            what="the republished conclusion applied",
        )
        await wait_until(
            lambda: supervision.recorder.max_tracking_id("INTAKE") == 2,
            what="the republished screening applied",
        )
        assert set(cases_of(app)) == expected

        case = supervision.get_case(case_id_for_outcome(meeting.outcomes[0].outcome_id))
        assert (case.office, case.department, case.deadline) == (
            "yanji",
            "延吉市住房和城乡建设局",
            date(2020, 8, 31),
        )
        await wait_until(lambda: _count_opened(js, 3), what="three CaseOpened events on the stream")

    # A restart of the service itself resumes after its tracking records: nothing new.
    async with running_supervision(nats_server, tmp_path / "data") as app:
        await publish(js, referral(uuid4()), "tumen", "intake-event-2", "intake-event-2")
        await wait_until(lambda: len(cases_of(app)) == 4, what="the new referral's case")
        await wait_until(lambda: _count_opened(js, 4), what="four CaseOpened events")
        opened = await opened_on_stream(js)
        assert len(opened) == len(set(opened)) == 4


async def _count_opened(js: JetStreamContext, count: int) -> bool:
    return len(await opened_on_stream(js)) == count


async def test_streams_exist_for_a_service_that_starts_before_its_upstreams(
    nats_server: EmbeddedNats, nats_client: Client, tmp_path: Path
) -> None:
    js = nats_client.jetstream()
    async with running_supervision(nats_server, tmp_path / "data"):
        names = {
            (await js.stream_info(s.name)).config.name
            for s in (
                SUPERVISION_STREAM,
                MEETINGS_STREAM,
                INTAKE_STREAM,
            )
        }
    assert names == {"SUPERVISION", "MEETINGS", "INTAKE"}
