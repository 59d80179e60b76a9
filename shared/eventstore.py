"""What every service's event store shares: save notifications and group commit (批量提交)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    ProcessRecorder,
    Recording,
    Transcoding,
)

from shared.aio import in_thread
from shared.audit import AuditedMapper, acting, stamp


class DateAsISO(Transcoding):
    """Deadlines and activity days are dates; the library transcodes only datetimes."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class ServiceApplication(Application[UUID]):
    """An eventsourcing application that saves requests in groups (its service runs
    `group_commit.run()`) and tells listeners, such as the relay, when it stored events."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.saved_listeners: list[Callable[[], None]] = []
        self.group_commit = GroupCommit(self)

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=AuditedMapper
        )

    def construct_recorder(self) -> ProcessRecorder:
        # A process recorder stores new events and an upstream tracking record in one
        # transaction: what `shared.process.UpstreamProcessor` needs to apply each once.
        with self._schema_changes_one_at_a_time():
            return self.factory.process_recorder()

    @contextlib.contextmanager
    def _schema_changes_one_at_a_time(self) -> Iterator[None]:
        """On PostgreSQL the library creates types and functions shared by every application
        in the schema; services or replicas starting together collide on them ("tuple
        concurrently updated", duplicate keys in pg_type). A session advisory lock makes
        them take turns; on SQLite each application has a file of its own."""
        if self.env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
            yield
            return
        with psycopg.connect(
            host=self.env.get("POSTGRES_HOST"),
            port=self.env.get("POSTGRES_PORT"),
            user=self.env.get("POSTGRES_USER"),
            password=self.env.get("POSTGRES_PASSWORD") or None,
            dbname=self.env.get("POSTGRES_DBNAME"),
            autocommit=True,
        ) as lock:
            lock.execute("SELECT pg_advisory_lock(hashtext('shangliang: schema changes'))")
            yield

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        recordings = super().save(*objs, **kwargs)
        self.tell_saved()
        return recordings

    def save_events(self, *events: DomainEventProtocol[UUID]) -> list[Recording[UUID]]:
        """Store new domain events as `save` stores them, without its check of each object
        against the library's runtime-checkable protocols: on Python 3.11 that isinstance
        walks the protocol's attributes anew for every event, and it was a quarter of a
        group commit's CPU (profiled: bench/profile_intake.py)."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        processing.events.extend(events)
        recordings = self._record(processing)
        self._notify(recordings)
        self.notify(processing.events)  # what `save` also still calls
        self.tell_saved()
        return recordings

    def tell_saved(self) -> None:
        for listener in self.saved_listeners:
            listener()


@dataclass
class _Pending:
    events: Sequence[DomainEventProtocol[UUID]]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    """Saves the new events of many concurrent requests in one transaction.

    One transaction per request is what limits a SQLite or PostgreSQL store; one per
    batch is several times faster and costs a request no extra wait when it is alone.
    A batch that conflicts is saved again request by request, so only the request that
    caused the conflict gets the `IntegrityError`.
    """

    def __init__(self, application: ServiceApplication, max_batch: int = 256) -> None:
        self._app = application
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()

    async def save(self, *aggregates: Any) -> None:
        """Store the pending events of these aggregates, atomically with each other, as
        done by whoever the calling request acts as (read here, not by the writer)."""
        events = [e for a in aggregates for e in a.collect_events()]
        stamp(events, acting.get())
        pending = _Pending(events)
        await self._queue.put(pending)
        await pending.done

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            outcomes = await in_thread(self._save_batch, [p.events for p in batch])
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.done.done():
                    continue  # the request went away
                if outcome is None:
                    pending.done.set_result(None)
                else:
                    pending.done.set_exception(outcome)

    def _save_batch(
        self, batch: list[Sequence[DomainEventProtocol[UUID]]]
    ) -> list[Exception | None]:
        try:
            self._app.save_events(*[e for events in batch for e in events])
            return [None] * len(batch)
        except IntegrityError as error:
            if len(batch) == 1:
                return [error]
            return [self._save_alone(events) for events in batch]
        except Exception as error:
            return [error] * len(batch)

    def _save_alone(self, events: Sequence[DomainEventProtocol[UUID]]) -> Exception | None:
        try:
            self._app.save_events(*events)
            return None
        except Exception as error:
            return error
