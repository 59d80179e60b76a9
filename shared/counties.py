"""Offline county offices (县政协离线运行): the switch that makes a set-up a county's.

A county office may run its own nats-server as a leaf node of the prefecture's cluster, with
its own intake service; the streams that this takes, on the county's server and on the
prefecture's, are in shared/streams.py (`county_streams`, `intake_streams`).
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.streams import HUB_DOMAIN


class CountyServer(BaseSettings):
    """`SHANGLIANG_COUNTY_OFFICE`, e.g. `hunchun`: set for the set-up (`shangliang
    nats-setup`) of a county office's own nats-server, which then creates that server's
    streams instead of the prefecture's; `SHANGLIANG_HUB_DOMAIN` (`hub`) is the prefecture's
    JetStream domain."""

    model_config = SettingsConfigDict(env_prefix="SHANGLIANG_", extra="ignore")

    county_office: str | None = None
    hub_domain: str = HUB_DOMAIN
