"""Intake's relay in a process of its own, so that a test can SIGKILL it in mid-batch.

    python relay_process.py EVENT_STORE_ENV_JSON NATS_URL BATCH_SIZE

Publishes everything the store holds, then exits 0.
"""

from __future__ import annotations

import asyncio
import json
import sys

from services.intake.application import IntakeApplication
from services.intake.publishing import to_contract
from shared.messaging import connect
from shared.relay import Relay
from shared.streams import INTAKE_STREAM


async def relay_everything(store_env: dict[str, str], nats_url: str, batch_size: int) -> None:
    app = IntakeApplication(env=store_env)
    nc = await connect(nats_url, "relay-process")
    try:
        relay = Relay(nc, INTAKE_STREAM, app, to_contract, batch_size=batch_size)
        await relay.publish_all()
    finally:
        await nc.close()
        app.close()


if __name__ == "__main__":
    asyncio.run(relay_everything(json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
