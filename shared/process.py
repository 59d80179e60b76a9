"""Upstream processing (上游事件处理): another service's events turned into this service's own.

Meetings learns which issues intake accepted as topics, supervision opens cases from meeting
outcomes and referrals, intake resolves issues when supervision verifies a case: each follows
an upstream stream with a `StreamConsumer` whose view is an `UpstreamProcessor`. Every message
is handled in its own transaction that stores the new domain events together with the
upstream's store position (its notification id, not the stream sequence, which a stream
created again starts over), so a redelivered, replayed or republished message changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import IntegrityError, Tracking

from shared.audit import stamp, system_actor
from shared.commands import retry_on_conflict_sync
from shared.consumer import Delivered
from shared.contracts import Actor, Contract, Envelope
from shared.eventstore import ServiceApplication

log = logging.getLogger(__name__)


class PolicyRefused(Exception):
    """The upstream event cannot change anything here (e.g. a rule of this service's domain).

    The message is passed over and its position recorded; a policy that raises anything
    else stops the consumer, which retries the same message until it goes through.
    """


@dataclass(frozen=True)
class Upstream:
    """What a policy gets: the stream it came from, the envelope, the typed event."""

    stream: str
    position: int
    """The event's notification id in the upstream store."""
    envelope: Envelope
    event: Contract


Policy = Callable[[Upstream, ProcessingEvent[UUID]], None]
"""Loads aggregates from the application, triggers their methods, and collects the new events
with `processing.collect_events(aggregate)`."""


class UpstreamProcessor:
    """A `TrackedView` over a service application: applies an upstream policy exactly once."""

    def __init__(self, application: ServiceApplication, policy: Policy) -> None:
        self.application = application
        self.policy = policy

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.application.recorder.max_tracking_id(application_name)  # type: ignore[attr-defined,no-any-return]

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        stream = tracking.application_name
        done = self.max_tracking_id(stream) or 0
        stored = False
        for message in messages:
            if message.position > done:
                stored |= self._process(stream, message)
        if stored:
            self.application.tell_saved()

    def _process(self, stream: str, message: Delivered) -> bool:
        """Store what one message causes, with its position; True if events were stored."""

        def attempt() -> bool:
            processing: ProcessingEvent[UUID] = ProcessingEvent(Tracking(stream, message.position))
            if message.contract is not None:
                upstream = Upstream(stream, message.position, message.envelope, message.contract)
                try:
                    self.policy(upstream, processing)
                except PolicyRefused as refusal:
                    log.warning("%s #%d passed over: %s", stream, message.position, refusal)
                    processing = ProcessingEvent(Tracking(stream, message.position))
                stamp(processing.events, _actor_of(upstream))
            try:
                self.application._record(processing)
            except IntegrityError:
                # The position itself being taken means another replica applied it; else a
                # request changed the same aggregate meanwhile: reload and decide again.
                if (self.max_tracking_id(stream) or 0) >= message.position:
                    return False
                raise
            return bool(processing.events)

        return retry_on_conflict_sync(attempt)


def _actor_of(upstream: Upstream) -> Actor:
    """The upstream service acts; the request that caused its event is kept for tracing."""
    cause = upstream.envelope.actor
    return system_actor(
        upstream.event.service,
        getattr(upstream.event, "office", None),
        None if cause is None else cause.request_id,
    )
