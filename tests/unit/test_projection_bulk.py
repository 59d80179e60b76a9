"""A rebuild's bulk load ends in the state the live view reaches, row for row."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.projections.bulk import BulkLoad, facts_after
from services.projections.pull import ProtocolError, ack_sequence
from services.projections.rebuild import (
    Payloads,
    apply_payloads,
    decode_typed,
    decoded,
)
from services.projections.views import fact_json, open_projection_view
from shared.contracts import UndecodableMessage, decode
from tests.support.history import STREAMS, history


def payloads_with_surprises() -> dict[str, Payloads]:
    """A generated history as bytes, with a re-published event and an undecodable message."""
    streams = {
        stream: [(m.position, m.envelope.to_bytes()) for m in messages]
        for stream, messages in history(200, seed=21).items()
    }
    intake, meetings = streams["INTAKE"], streams["MEETINGS"]
    intake.append((len(intake) + 1, intake[3][1]))  # the same event id, published again
    meetings.append((len(meetings) + 1, b'{"id": "not an envelope"}'))  # last of its stream
    return streams


def in_batches(payloads: Payloads, size: int) -> list[Payloads]:
    return [payloads[i : i + size] for i in range(0, len(payloads), size)]


def index_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {row[0] for row in rows}


def test_a_bulk_load_equals_the_live_view_with_its_positions_and_indexes(tmp_path: Path) -> None:
    streams = payloads_with_surprises()
    live = open_projection_view(str(tmp_path / "live.sqlite"))
    for stream in STREAMS:
        for batch in in_batches(streams[stream], 37):
            apply_payloads(live, stream, batch, batch[-1][0])

    load = BulkLoad(tmp_path / "bulk.sqlite")
    for stream in STREAMS:
        done = 0
        for n, batch in enumerate(in_batches(streams[stream], 150)):
            last = batch[-1][0]
            if n % 2:  # decoded into facts by the receiving process, as when the worker lags
                load.add_facts(stream, facts_after(stream, decoded(batch), done), last)
            else:
                load.add(stream, decoded(batch), last)
            done = last
        load.add(stream, decoded(streams[stream][-5:]), streams[stream][-1][0])  # seen: no-op
        load.add_facts(stream, facts_after(stream, decoded(streams[stream][-5:]), 0), done)
    load.finish(STREAMS)

    bulk = open_projection_view(str(tmp_path / "bulk.sqlite"))
    try:
        rows = live.dump()
        assert len(rows["issue_status"]) == 200
        assert bulk.dump() == rows
        for stream in STREAMS:
            assert (
                bulk.max_tracking_id(stream) == live.max_tracking_id(stream) == len(streams[stream])
            )
        with bulk.read() as c:
            c.execute("PRAGMA journal_mode")
            assert c.fetchone()[0] == "wal"
    finally:
        bulk.datastore.close()
        live.datastore.close()
    assert index_names(tmp_path / "bulk.sqlite") == index_names(tmp_path / "live.sqlite")


def test_a_bulk_load_without_meetings_or_cases_has_every_index_of_the_live_view(
    tmp_path: Path,
) -> None:
    # The tables of a kind with no entity get their indexes too, though none is derived.
    intake = payloads_with_surprises()["INTAKE"]
    open_projection_view(str(tmp_path / "live.sqlite")).datastore.close()
    load = BulkLoad(tmp_path / "bulk.sqlite")
    load.add("INTAKE", decoded(intake), intake[-1][0])
    load.finish(STREAMS)
    assert not load.facts.keys() >= {"meeting", "case"}
    assert index_names(tmp_path / "bulk.sqlite") == index_names(tmp_path / "live.sqlite")


values = st.one_of(st.none(), st.booleans(), st.integers(-(2**62), 2**62), st.text())


@given(st.dictionaries(st.text(), st.one_of(values, st.lists(values, max_size=4)), max_size=6))
def test_a_facts_data_is_stored_as_the_text_it_always_had(data: dict[str, Any]) -> None:
    assert fact_json(data) == json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def outcome(decoder: Callable[[bytes], Any], payload: bytes) -> Any:
    try:
        envelope, contract = decoder(payload)
    except UndecodableMessage:
        return "undecodable"
    return envelope.id, contract


def odd_payloads() -> list[bytes]:
    """Envelopes `decode` reads one way and a look at the bytes might read another."""
    submitted = next(
        m.envelope for m in history(1, seed=2)["INTAKE"] if "IssueSubmitted" in m.envelope.type
    )
    closed = "shangliang.intake.IssueClosed.v1"
    envelope = json.loads(submitted.to_bytes())
    # The first "type" in the bytes is the data's, and the data would be a valid IssueClosed.
    as_closed = {**envelope["data"], "type": closed, "closed_at": envelope["time"]}
    data_first = {"data": as_closed, **{k: v for k, v in envelope.items() if k != "data"}}
    closed_data = {**envelope, "type": closed}
    unknown = {**envelope, "type": "shangliang.intake.Unheard.v9"}
    invalid = {**envelope, "data": {**envelope["data"], "issue_id": "not a uuid"}}
    no_time = {k: v for k, v in envelope.items() if k != "time"}
    spaced = json.dumps(envelope, indent=1)
    cases = [data_first, closed_data, unknown, invalid, no_time]
    compact = [json.dumps(c, separators=(",", ":")).encode() for c in cases]
    return [*compact, spaced.encode(), b"{", b'"type":"']


@pytest.mark.parametrize("payload", odd_payloads())
def test_a_one_pass_decode_reads_an_odd_envelope_as_decode_does(payload: bytes) -> None:
    assert outcome(decode_typed, payload) == outcome(decode, payload)


def test_a_one_pass_decode_reads_every_message_of_a_history_as_decode_does() -> None:
    for messages in history(60, seed=4).values():
        for message in messages:
            payload = message.envelope.to_bytes()
            assert outcome(decode_typed, payload) == outcome(decode, payload)


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.INTAKE.ordered_1.1.20417.20417.1764140000000000000.99",
        "$JS.ACK.hub.ACCOUNTHASH.INTAKE.ordered_1.2.7.3.1764140000000000000.0",
        "$JS.ACK.hub.ACCOUNTHASH.INTAKE.ordered_1.2.123456789.3.1764140000000000000.0.r4nd",
    ],
)
def test_a_stream_sequence_is_read_from_the_reply_as_nats_reads_it(reply: str) -> None:
    msg = Msg(Client(), reply=reply)
    assert ack_sequence(reply.encode()) == msg.metadata.sequence.stream


def test_a_message_that_is_not_from_a_stream_is_refused() -> None:
    with pytest.raises(ProtocolError):
        ack_sequence(b"_INBOX.abc")
