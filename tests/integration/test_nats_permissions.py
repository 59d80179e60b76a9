"""Each service's NATS user may publish only its own subjects and read only the streams it
was given, on a real nats-server loading the users of deploy/nats/users.conf (rendered from
shared/nats_access.py, as the embedded server of `shangliang up` loads them). Every refusal
is shown beside the same user doing the allowed thing, so that the test can fail."""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.embedded import EmbeddedNats, passwords_from_file
from shared.lease import BUCKET, relay_lease
from shared.messaging import connect, ensure_stream, inbox_prefix, set_up
from shared.nats_access import ADMIN, NOTIFICATIONS_LEASE, USERS, users_conf
from shared.settings import Settings
from shared.streams import INTAKE_STREAM, MEETINGS_STREAM, SUPERVISION_STREAM, StreamSpec
from tests.support.waiting import wait_until
from tools import cli
from tools.cli import main as shangliang

REFUSAL_TIMEOUT = 1.0
"""A refused request gets no answer (the refusal goes to the error callback): how long to wait."""

Connect = Callable[[str], Awaitable[Client]]


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[EmbeddedNats]:
    passwords = passwords_from_file(tmp_path / "nats-passwords.json")
    server = EmbeddedNats(tmp_path / "nats", passwords=passwords).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def as_user(secured: EmbeddedNats) -> AsyncIterator[Connect]:
    """Connects as one of the users; the admin has already created the streams and bucket."""
    opened: list[Client] = []
    passwords = secured.passwords or {}

    async def open_as(user: str) -> Client:
        opened.append(await connect(secured.url, user, user, passwords[user]))
        return opened[-1]

    await set_up(Settings(), (await open_as(ADMIN)).jetstream())
    try:
        yield open_as
    finally:
        for nc in opened:
            await nc.close()


def refusals(caplog: pytest.LogCaptureFixture, user: str) -> list[str]:
    """What the server refused the user, as reported to the connection's error callback
    (nats-py lowercases the server's message)."""
    return [
        message
        for record in caplog.records
        if (message := record.getMessage()).startswith(f"NATS error ({user})")
        and "permissions violation" in message
    ]


async def read_one(nc: Client, spec: StreamSpec) -> Msg:
    """Pull the stream's first message as the services' consumers do (shared/consumer.py)."""
    js = nc.jetstream()
    consumer = await js.add_consumer(
        spec.name,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
    )
    assert consumer.name is not None
    subscription = await js.pull_subscribe_bind(consumer.name, stream=spec.name)
    try:
        (first,) = await subscription.fetch(1, timeout=5)
        return first
    finally:
        await subscription.unsubscribe()
        await js.delete_consumer(spec.name, consumer.name)


def test_the_deploy_users_are_the_ones_the_code_describes() -> None:
    deployed = Path(__file__).resolve().parents[2] / "deploy" / "nats" / "users.conf"
    assert deployed.read_text() == users_conf(), (
        "regenerate: python -m shared.nats_access > deploy/nats/users.conf"
    )


def test_generated_passwords_are_kept_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "nats-passwords.json"
    first = passwords_from_file(path)
    assert set(first) == set(USERS)
    assert len(set(first.values())) == len(USERS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert passwords_from_file(path) == first


async def test_intake_publishes_its_own_subjects_but_not_a_meetings_subject(
    as_user: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    intake = (await as_user("intake")).jetstream(timeout=REFUSAL_TIMEOUT)
    admin = (await as_user(ADMIN)).jetstream()

    ack = await intake.publish("intake.yanji.IssueSubmitted.v1", b"{}")
    assert ack.stream == INTAKE_STREAM.name

    with (
        caplog.at_level(logging.WARNING, logger="shared.messaging"),
        pytest.raises(NatsTimeout),
    ):
        await intake.publish("meetings.yanji.MeetingConcluded.v1", b"{}")
    assert refusals(caplog, "intake") == [
        "NATS error (intake): nats: permissions violation for publish to "
        '"meetings.yanji.meetingconcluded.v1"'
    ]
    assert (await admin.stream_info(MEETINGS_STREAM.name)).state.messages == 0
    assert (await admin.stream_info(INTAKE_STREAM.name)).state.messages == 1

    projections = (await as_user("projections")).jetstream(timeout=REFUSAL_TIMEOUT)
    with pytest.raises(NatsTimeout):  # the read side publishes nothing at all
        await projections.publish("intake.yanji.IssueSubmitted.v1", b"{}")
    assert (await admin.stream_info(INTAKE_STREAM.name)).state.messages == 1


async def test_a_service_may_purge_its_own_stream_to_refill_it_but_no_other(
    as_user: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    admin = (await as_user(ADMIN)).jetstream()
    await admin.publish("meetings.yanji.MeetingConcluded.v1", b"meeting")
    intake = (await as_user("intake")).jetstream(timeout=REFUSAL_TIMEOUT)

    assert await intake.purge_stream(INTAKE_STREAM.name)
    with caplog.at_level(logging.WARNING, logger="shared.messaging"), pytest.raises(NatsTimeout):
        await intake.purge_stream(MEETINGS_STREAM.name)
    assert any("$js.api.stream.purge.meetings" in m for m in refusals(caplog, "intake"))
    assert (await admin.stream_info(MEETINGS_STREAM.name)).state.messages == 1


async def test_a_consumer_reads_the_streams_it_was_given_and_no_other(
    as_user: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    admin = (await as_user(ADMIN)).jetstream()
    await admin.publish("supervision.yanji.CaseOpened.v1", b"case")
    await admin.publish("meetings.yanji.TopicAdded.v1", b"topic")
    intake = await as_user("intake")
    meetings = await as_user("meetings")

    # Intake follows supervision's cases and the meetings' agendas (the public timeline).
    assert (await read_one(intake, SUPERVISION_STREAM)).data == b"case"
    assert (await read_one(intake, MEETINGS_STREAM)).data == b"topic"

    with caplog.at_level(logging.WARNING, logger="shared.messaging"):
        refused_js = meetings.jetstream(timeout=REFUSAL_TIMEOUT)
        with pytest.raises(NatsTimeout):
            await refused_js.subscribe(
                "supervision.>", stream=SUPERVISION_STREAM.name, ordered_consumer=True
            )
        with pytest.raises(NatsTimeout):
            await refused_js.get_msg(SUPERVISION_STREAM.name, seq=1)
    refused = refusals(caplog, "meetings")
    assert any("$js.api.consumer.create.supervision" in m for m in refused), refused
    assert any("$js.api.stream.msg.get.supervision" in m for m in refused), refused


async def test_no_user_can_listen_on_another_users_inboxes(
    as_user: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    intake = await as_user("intake")
    caplog.set_level(logging.WARNING, logger="shared.messaging")
    await intake.subscribe(f"{inbox_prefix('intake')}.>")
    for stolen in ("_INBOX.>", f"{inbox_prefix('projections')}.>"):
        await intake.subscribe(stolen)
    await wait_until(lambda: len(refusals(caplog, "intake")) == 2, timeout=5, what="both refusals")
    assert sorted(refusals(caplog, "intake")) == [
        'NATS error (intake): nats: permissions violation for subscription to "_inbox.>"',
        "NATS error (intake): nats: permissions violation for subscription to "
        '"_inbox_projections.>"',
    ]


async def test_a_service_heals_its_own_stream_but_may_not_touch_another(
    as_user: Connect,
) -> None:
    admin = (await as_user(ADMIN)).jetstream()
    intake = (await as_user("intake")).jetstream(timeout=REFUSAL_TIMEOUT)
    await admin.delete_stream(INTAKE_STREAM.name)

    await ensure_stream(intake, INTAKE_STREAM)
    assert (await admin.stream_info(INTAKE_STREAM.name)).config.subjects == ["intake.>"]

    with pytest.raises(NatsTimeout):
        await intake.delete_stream(INTAKE_STREAM.name)
    await admin.delete_stream(MEETINGS_STREAM.name)
    with pytest.raises(NatsTimeout):
        await ensure_stream(intake, MEETINGS_STREAM)


async def test_a_service_holds_its_own_relay_lease_only(as_user: Connect) -> None:
    kv = await (await as_user("intake")).jetstream(timeout=REFUSAL_TIMEOUT).key_value(BUCKET)
    assert await kv.create(relay_lease("intake"), b"intake-1") >= 1
    assert (await kv.get(relay_lease("intake"))).value == b"intake-1"
    with pytest.raises(NatsTimeout):
        await kv.create(relay_lease("meetings"), b"intake-1")


async def test_notifications_reads_its_streams_and_holds_its_sender_lease_only(
    as_user: Connect,
) -> None:
    admin = (await as_user(ADMIN)).jetstream()
    await admin.publish("supervision.yanji.LetterIssued.v1", b"letter")
    await admin.publish("meetings.yanji.MeetingPlanned.v1", b"meeting")
    notifications = await as_user("notifications")
    assert (await read_one(notifications, SUPERVISION_STREAM)).data == b"letter"
    assert (await read_one(notifications, MEETINGS_STREAM)).data == b"meeting"

    js = notifications.jetstream(timeout=REFUSAL_TIMEOUT)
    kv = await js.key_value(BUCKET)
    assert await kv.create(NOTIFICATIONS_LEASE, b"notifications-1") >= 1
    with pytest.raises(NatsTimeout):
        await kv.create(relay_lease("supervision"), b"notifications-1")
    with pytest.raises(NatsTimeout):  # it tells people; it publishes no event
        await js.publish("supervision.yanji.CaseVerified.v1", b"{}")
    assert (await admin.stream_info(SUPERVISION_STREAM.name)).state.messages == 1


def test_nats_setup_runs_as_admin_and_not_as_a_service(
    secured: EmbeddedNats, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    passwords = secured.passwords or {}
    monkeypatch.setenv("SHANGLIANG_NATS_URL", secured.url)
    monkeypatch.setenv("SHANGLIANG_NATS_USER", "intake")
    monkeypatch.setenv("SHANGLIANG_NATS_PASSWORD", passwords["intake"])
    assert shangliang(["nats-setup", "--timeout", "2"]) == 1
    assert "admin" in capsys.readouterr().err

    monkeypatch.setenv("SHANGLIANG_NATS_USER", ADMIN)
    monkeypatch.setenv("SHANGLIANG_NATS_PASSWORD", passwords[ADMIN])
    assert shangliang(["nats-setup"]) == 0

    async def streams() -> list[str]:
        nc = await connect(secured.url, "check", ADMIN, passwords[ADMIN])
        try:
            return sorted(s.config.name for s in await nc.jetstream().streams_info())
        finally:
            await nc.close()

    assert asyncio.run(streams()) == sorted(["INTAKE", "MEETINGS", "SUPERVISION", f"KV_{BUCKET}"])


def test_production_mode_refuses_to_connect_without_nats_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHANGLIANG_MODE", "production")
    assert shangliang(["nats-setup"]) == 2
    assert "SHANGLIANG_NATS_PASSWORD" in capsys.readouterr().err


def test_a_command_run_by_hand_reaches_the_embedded_server_as_projections(
    secured: EmbeddedNats, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secured.set_up_blocking(Settings())
    monkeypatch.setenv("SHANGLIANG_NATS_URL", secured.url)
    monkeypatch.setenv("SHANGLIANG_DATA_DIR", str(tmp_path))  # where the passwords are
    assert shangliang(["projections", "rebuild"]) == 0

    monkeypatch.setenv("SHANGLIANG_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(cli, "CONNECT_TIMEOUT_SECONDS", 1.0)
    assert shangliang(["projections", "rebuild"]) == 2  # anonymous: refused, said in words
