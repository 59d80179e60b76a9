"""One replica of intake's relay, publishing only while it holds the lease.

    python leased_relay_process.py EVENT_STORE_ENV_JSON NATS_URL LEASE_TTL_SECONDS

Runs until killed; a test kills it with SIGKILL, as a crashed replica dies.
"""

from __future__ import annotations

import asyncio
import json
import sys

from services.intake.application import IntakeApplication
from services.intake.publishing import to_contract
from shared.lease import Lease
from shared.messaging import connect
from shared.relay import Relay
from shared.streams import INTAKE_STREAM


async def relay_while_leader(store_env: dict[str, str], nats_url: str, ttl: float) -> None:
    app = IntakeApplication(env=store_env)
    nc = await connect(nats_url, "leased-relay")
    relay = Relay(nc, INTAKE_STREAM, app, to_contract, idle_poll_seconds=0.1)
    await Lease(nc.jetstream(), "relay-intake", ttl_seconds=ttl).run(relay.run)


if __name__ == "__main__":
    asyncio.run(relay_while_leader(json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
