"""Which JetStream streams exist (消息流), their subjects and where they gather from.

One stream per service: `intake` owns `INTAKE` with subjects `intake.>`, and so on.

Offline county offices (县政协离线运行) add two. A county office may run its own nats-server
as a leaf node of the prefecture's cluster, in a JetStream domain of its own
(`county-<office>`, deploy/nats/leaf/county.conf), with its own intake service. That intake
stores and relays exactly as the prefecture's does, into an `INTAKE` stream of the county's
domain, whether or not the link to the prefecture is up.

The prefecture's `INTAKE_COUNTIES` stream sources every such county stream through the
domain's API. JetStream keeps each county's messages in order and resumes each source where
it stopped once the link is back. The prefecture's own `INTAKE` keeps exactly one writer
(its relay checks `Nats-Expected-Last-Sequence`), and each reader of intake's events
(meetings, supervision, projections) reads `INTAKE_COUNTIES` as one more upstream stream,
tracked by its own name like any other.

The other way, the county's intake follows supervision's verdicts on its issues and the
meetings' agendas that take them up: the county's `SUPERVISION` and `MEETINGS` streams
source the prefecture's through the hub's domain (`hub`, deploy/nats/leaf/hub-node.conf),
only the county's own `supervision.<office>.>` and `meetings.<office>.>` subjects, and catch
up after a cut like any source. A meeting's events go under its organising office (the first
of its offices), so a county issue on a joint meeting that another office organises does not
reach the county this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nats.js.api import (
    DiscardPolicy,
    ExternalStream,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)

from shared.settings import HUB_DOMAIN, LeafOffices


@dataclass(frozen=True)
class StreamSpec:
    """One service's stream: `intake` owns stream `INTAKE` with subjects `intake.>`."""

    service: str

    @property
    def name(self) -> str:
        return self.service.upper()

    @property
    def subjects(self) -> list[str]:
        return [f"{self.service}.>"]

    @property
    def sourced(self) -> bool:
        """Whether the stream gathers other streams: their stores' positions interleave in
        it, so its readers track its own sequence instead of the relay's position."""
        return False

    def sources(self) -> list[StreamSource]:
        """The streams this one gathers (the county offices' below); a stream that gathers
        others takes no subjects of its own."""
        return []

    def config(self, replicas: int = 1, duplicate_window: float = 120.0) -> StreamConfig:
        sources = self.sources()
        return StreamConfig(
            name=self.name,
            subjects=None if sources else self.subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            num_replicas=replicas,
            duplicate_window=duplicate_window,
            sources=sources or None,
        )


INTAKE_STREAM = StreamSpec("intake")
MEETINGS_STREAM = StreamSpec("meetings")
SUPERVISION_STREAM = StreamSpec("supervision")
STREAMS = (INTAKE_STREAM, MEETINGS_STREAM, SUPERVISION_STREAM)

"""The JetStream domain of the prefecture's cluster (deploy/nats/leaf/hub-node.conf)."""


def county_domain(office: str) -> str:
    """The JetStream domain of a county office's own nats-server."""
    return f"county-{office}"


@dataclass(frozen=True)
class CountiesStream(StreamSpec):
    """The prefecture's stream of the county offices' intake events: no subjects of its own,
    one source per county that runs a leaf node. Messages keep their `intake.<office>.*`
    subjects, so intake's consumers read it with the same filter as `INTAKE`."""

    service: str = INTAKE_STREAM.service
    offices: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{INTAKE_STREAM.name}_COUNTIES"

    @property
    def subjects(self) -> list[str]:
        return []

    @property
    def sourced(self) -> bool:
        return True

    def sources(self) -> list[StreamSource]:
        return [
            StreamSource(
                name=INTAKE_STREAM.name,
                external=ExternalStream(api=f"$JS.{county_domain(office)}.API"),
            )
            for office in self.offices
        ]


def intake_streams(offices: Sequence[str] | None = None) -> tuple[StreamSpec, ...]:
    """Where the prefecture's readers find intake's events: `INTAKE`, and `INTAKE_COUNTIES`
    when county offices run leaf nodes (by default those of `SHANGLIANG_LEAF_OFFICES`).

    The admin's set-up (`shangliang nats-setup`) creates `INTAKE_COUNTIES` with these
    sources, and every reader follows the streams of the list it is given, so all of them
    must be given the same list."""
    if offices is None:
        offices = LeafOffices().leaf_offices
    return (INTAKE_STREAM, CountiesStream(offices=tuple(offices))) if offices else (INTAKE_STREAM,)


@dataclass(frozen=True)
class CountyFollowedStream(StreamSpec):
    """A county server's copy of a prefecture stream its intake follows (`SUPERVISION`,
    `MEETINGS`): the same name, no subjects of its own, one source, the prefecture's stream
    through the hub's domain, filtered to the county's own subjects. Its messages keep their
    subjects and headers, and come from the one upstream store in its order, so intake reads
    it like the prefecture's (tracked by the relay's position)."""

    office: str = ""
    hub_domain: str = HUB_DOMAIN

    @property
    def subjects(self) -> list[str]:
        return [f"{self.service}.{self.office}.>"]

    def sources(self) -> list[StreamSource]:
        return [
            StreamSource(
                name=self.name,
                filter_subject=self.subjects[0],
                external=ExternalStream(api=f"$JS.{self.hub_domain}.API"),
            )
        ]


def county_streams(office: str, hub_domain: str = HUB_DOMAIN) -> tuple[StreamSpec, ...]:
    """The streams of a county office's own server: its intake's `INTAKE`, and the
    `SUPERVISION` and `MEETINGS` its intake follows, sourced from the prefecture's."""
    return (
        INTAKE_STREAM,
        *(
            CountyFollowedStream(upstream.service, office=office, hub_domain=hub_domain)
            for upstream in (SUPERVISION_STREAM, MEETINGS_STREAM)
        ),
    )
