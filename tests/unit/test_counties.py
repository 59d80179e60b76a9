"""Which streams the prefecture's readers of intake's events follow (shared/streams.py)."""

from __future__ import annotations

import pytest

from shared.settings import CountyServer
from shared.streams import (
    INTAKE_STREAM,
    MEETINGS_STREAM,
    SUPERVISION_STREAM,
    CountiesStream,
    county_streams,
    intake_streams,
)


def test_without_county_leaf_nodes_the_readers_follow_intake_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHANGLIANG_LEAF_OFFICES", raising=False)
    assert intake_streams() == (INTAKE_STREAM,)


def test_county_leaf_nodes_add_one_stream_that_sources_each_countys_intake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHANGLIANG_LEAF_OFFICES", '["hunchun", "tumen"]')
    intake, counties = intake_streams()
    assert intake == INTAKE_STREAM
    assert isinstance(counties, CountiesStream)
    config = counties.config(replicas=3)
    assert config.name == "INTAKE_COUNTIES" != INTAKE_STREAM.name
    # No subjects of its own: nothing published on the prefecture lands in it directly.
    assert not config.subjects
    assert [(s.name, s.external.api) for s in config.sources or [] if s.external] == [
        ("INTAKE", "$JS.county-hunchun.API"),
        ("INTAKE", "$JS.county-tumen.API"),
    ]
    assert config.num_replicas == 3
    # The readers filter it by intake's subjects, which the sourced messages keep.
    assert counties.service == INTAKE_STREAM.service


def test_a_county_server_sources_only_its_own_verdicts_and_agendas_from_the_hubs_domain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHANGLIANG_COUNTY_OFFICE", "hunchun")
    monkeypatch.delenv("SHANGLIANG_HUB_DOMAIN", raising=False)
    server = CountyServer()
    assert server.county_office is not None
    intake, *followed = county_streams(server.county_office, server.hub_domain)
    assert intake == INTAKE_STREAM
    for stream, upstream in zip(followed, (SUPERVISION_STREAM, MEETINGS_STREAM), strict=True):
        config = stream.config()
        # The name intake's consumer reads, no subjects of its own, one filtered source.
        assert config.name == upstream.name
        assert not config.subjects
        assert [
            (s.name, s.filter_subject, s.external.api) for s in config.sources or [] if s.external
        ] == [(upstream.name, f"{upstream.service}.hunchun.>", "$JS.hub.API")]
        # One store's positions in its order: tracked by the relay's position, like the
        # original.
        assert not stream.sourced
