"""The notifications' consumers (事件消费): one per upstream stream, like the read side's.

Each batch's notices and deliveries are stored with the stream position in one transaction
(services/notifications/store.py), so an event is acknowledged only once its notices exist.
"""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext

from services.notifications.store import NotificationStore
from shared.consumer import StreamConsumer, last_position
from shared.messaging import wait_for_stream
from shared.streams import MEETINGS_STREAM, SUPERVISION_STREAM, intake_streams

UPSTREAMS = (SUPERVISION_STREAM, MEETINGS_STREAM, *intake_streams())
"""Supervision's letters and deadlines, meetings' invitations, intake's issues (digests)."""


async def start_consumers(
    js: JetStreamContext, store: NotificationStore
) -> tuple[list[StreamConsumer], list[asyncio.Task[None]]]:
    for spec in UPSTREAMS:
        await wait_for_stream(js, spec)
    consumers = [StreamConsumer(js, spec, store) for spec in UPSTREAMS]
    return consumers, [asyncio.create_task(c.run()) for c in consumers]


async def streams_behind(js: JetStreamContext, consumers: list[StreamConsumer]) -> list[str]:
    """The upstream streams whose last event the consumers have not applied yet."""
    behind = []
    for spec, consumer in zip(UPSTREAMS, consumers, strict=True):
        if await last_position(js, spec) > consumer.position:
            behind.append(spec.name)
    return behind
