"""Offline county offices (县政协离线运行): the prefecture's stream of their intake events.

A county office may run its own nats-server as a leaf node of the prefecture's cluster, in a
JetStream domain of its own (`county-<office>`, deploy/nats/leaf/county.conf), with its own
intake service. That intake stores and relays exactly as the prefecture's does, into an
`INTAKE` stream of the county's domain, whether or not the link to the prefecture is up.

The prefecture's `INTAKE_COUNTIES` stream sources every such county stream through the
domain's API. JetStream keeps each county's messages in order and resumes each source where
it stopped once the link is back. The prefecture's own `INTAKE` keeps exactly one writer
(its relay checks `Nats-Expected-Last-Sequence`), and a consumer of intake's events reads
`INTAKE_COUNTIES` as one more upstream stream, tracked by its own name like any other.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    ExternalStream,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)

from shared.messaging import INTAKE_STREAM, StreamSpec, connect, ensure_stream
from shared.settings import Settings


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

    def config(self, replicas: int = 1, duplicate_window: float = 120.0) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            num_replicas=replicas,
            duplicate_window=duplicate_window,
            sources=[
                StreamSource(
                    name=INTAKE_STREAM.name,
                    external=ExternalStream(api=f"$JS.{county_domain(office)}.API"),
                )
                for office in self.offices
            ],
        )


async def ensure_counties_stream(
    js: JetStreamContext, offices: list[str], replicas: int = 1, duplicate_window: float = 120.0
) -> CountiesStream:
    """Create the prefecture's stream, or change its sources to exactly these offices."""
    spec = CountiesStream(offices=tuple(offices))
    await ensure_stream(js, spec, replicas, duplicate_window)
    return spec


async def _main(offices: list[str]) -> None:
    settings = Settings()
    nc = await connect(settings.nats_url, "counties")
    try:
        spec = await ensure_counties_stream(
            nc.jetstream(), offices, settings.stream_replicas, settings.duplicate_window_seconds
        )
        print(f"{spec.name}: 来源 / sources {', '.join(map(county_domain, offices)) or '-'}")
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="设置离线县政协来源 / set the county offices whose leaf nodes the "
        "prefecture sources (run as the NATS admin user, SHANGLIANG_NATS_URL)"
    )
    parser.add_argument("offices", nargs="*", help="e.g. hunchun tumen")
    asyncio.run(_main(parser.parse_args().offices))


if __name__ == "__main__":
    main()
