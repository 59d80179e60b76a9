"""Event contracts on the wire (事件契约) and the year an event counts in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from services.projections.views import china_year
from shared.contracts import Actor, Envelope, IssueSubmittedV1, UndecodableMessage, decode

BEIJING = timezone(timedelta(hours=8))


def submitted() -> IssueSubmittedV1:
    return IssueSubmittedV1(
        issue_id=uuid4(),
        office="yanji",
        title="小区路灯损坏",
        description="路灯坏了",
        category="城市管理",
        submitted_at=datetime(2020, 6, 4, 15, 30, tzinfo=BEIJING),
    )


def test_an_envelope_survives_the_round_trip_through_bytes() -> None:
    contract = submitted()
    envelope = Envelope.wrap("event-1", datetime(2020, 6, 4, 7, 31, tzinfo=UTC), "subj", contract)

    decoded, decoded_contract = decode(envelope.to_bytes())

    assert decoded == envelope
    assert decoded.type == "shangliang.intake.IssueSubmitted.v1"
    assert decoded.source == "/shangliang/intake"
    assert decoded_contract == contract


def test_the_envelope_carries_the_actor_and_one_from_before_actors_reads_as_unknown() -> None:
    actor = Actor(subject="clerk-li", office="yanji", role="clerk", roles=["clerk"])
    moment = datetime(2020, 6, 4, tzinfo=UTC)
    envelope = Envelope.wrap("e", moment, "s", submitted(), actor)
    older = json.loads(envelope.to_bytes())
    del older["actor"]

    assert decode(envelope.to_bytes())[0].actor == actor
    assert decode(json.dumps(older).encode())[0].actor is None


def test_the_subject_names_service_office_event_and_version() -> None:
    assert submitted().subject("tumen") == "intake.tumen.IssueSubmitted.v1"


def test_an_unknown_event_type_decodes_without_a_contract() -> None:
    envelope = Envelope(
        id="event-2",
        source="/shangliang/intake",
        type="shangliang.intake.IssueSubmitted.v9",
        time=datetime(2020, 6, 4, tzinfo=UTC),
        subject="x",
        data={"anything": "new"},
    )

    decoded, contract = decode(envelope.to_bytes())

    assert decoded == envelope
    assert contract is None


def test_a_known_type_ignores_fields_added_later_in_its_version() -> None:
    contract = submitted()
    envelope = Envelope.wrap("e", datetime(2020, 6, 4, tzinfo=UTC), "s", contract)
    payload = json.loads(envelope.to_bytes())
    payload["data"]["reporter_district"] = "建工街道"

    _, decoded = decode(json.dumps(payload).encode())

    assert decoded == contract


@pytest.mark.parametrize(
    "payload",
    [b"\x00\xffnot json", b"", b"[]", b'{"id": "only an id"}'],
    ids=["garbage", "empty", "a list", "no envelope fields"],
)
def test_bytes_that_are_no_envelope_are_undecodable(payload: bytes) -> None:
    with pytest.raises(UndecodableMessage):
        decode(payload)


def test_a_known_type_with_invalid_data_is_undecodable() -> None:
    envelope = Envelope.wrap("e", datetime(2020, 6, 4, tzinfo=UTC), "s", submitted())
    payload = json.loads(envelope.to_bytes())
    del payload["data"]["title"]

    with pytest.raises(UndecodableMessage):
        decode(json.dumps(payload).encode())


def test_an_evening_of_new_years_eve_in_beijing_counts_in_the_old_year() -> None:
    assert china_year(datetime(2020, 12, 31, 23, 30, tzinfo=BEIJING)) == 2020


def test_new_years_eve_afternoon_in_utc_counts_in_the_new_year_in_china() -> None:
    assert china_year(datetime(2020, 12, 31, 16, 30, tzinfo=UTC)) == 2021
