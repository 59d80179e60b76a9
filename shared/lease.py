"""A lease (主备租约): of several replicas of a service, one at a time does a job.

Several replicas of a service share one event store; each would run a relay, and all but one
would be refused by the stream's expected-last-sequence check, over and over. A lease lets
exactly one of them publish. It is a key in a NATS KV bucket whose TTL ends a dead holder's
turn: the holder renews it every third of the TTL; when a renewal fails it stops the job at
once, before the key can expire and another replica take over; a replica that was killed
stops renewing, and another holds the lease within one TTL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from shared.aio import check_cancelled

log = logging.getLogger(__name__)

BUCKET = "shangliang_leases"
TTL_SECONDS = 6.0


def relay_lease(service: str) -> str:
    """The lease a service's relay runs under (its NATS user may touch this key only)."""
    return f"relay-{service}"


def bucket_config(ttl_seconds: float = TTL_SECONDS, replicas: int = 1) -> KeyValueConfig:
    """The lease bucket: the key's TTL is the lease's, so a dead holder's turn ends."""
    return KeyValueConfig(
        bucket=BUCKET, ttl=ttl_seconds, history=1, storage=StorageType.FILE, replicas=replicas
    )


def holder_name() -> str:
    """Who holds a lease: readable by an operator, unique per process start."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Lease:
    """One named lease; `run(job)` runs the job only while this process holds it."""

    def __init__(
        self,
        js: JetStreamContext,
        name: str,
        holder: str | None = None,
        ttl_seconds: float = TTL_SECONDS,
        replicas: int = 1,
    ) -> None:
        self._js = js
        self.name = name
        self.holder = holder or holder_name()
        self._ttl = ttl_seconds
        self._replicas = replicas
        self._kv: KeyValue | None = None
        self._revision: int | None = None

    @property
    def held(self) -> bool:
        return self._revision is not None

    async def run(self, job: Callable[[], Awaitable[None]]) -> None:
        """Forever: wait for the lease, run the job while it is held, stop the job when lost."""
        try:
            while True:
                await self._acquire()
                log.info("lease %s held by %s", self.name, self.holder)
                task = asyncio.create_task(job())
                try:
                    await self._keep(task)
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                log.warning("lease %s lost by %s; job stopped", self.name, self.holder)
        finally:
            await self._release()

    async def current_holder(self) -> str | None:
        try:
            entry = await (await self._bucket()).get(self.name)
        except KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self._js.key_value(BUCKET)
            except BucketNotFoundError:
                # Normally created by the admin at start-up (a service's user may not).
                self._kv = await self._js.create_key_value(bucket_config(self._ttl, self._replicas))
        return self._kv

    async def _acquire(self) -> None:
        while True:
            check_cancelled()
            try:
                kv = await self._bucket()
                try:
                    self._revision = await kv.create(self.name, self.holder.encode())
                    return
                except KeyWrongLastSequenceError:
                    entry = await kv.get(self.name)
                    if entry.value == self.holder.encode():
                        # Ours still (a renewal timed out but got through): take it up again.
                        self._revision = await kv.update(
                            self.name, self.holder.encode(), last=entry.revision
                        )
                        return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.debug("lease %s not acquired: %r", self.name, error)
            await asyncio.sleep(self._ttl / 3)

    async def _keep(self, task: asyncio.Task[None]) -> None:
        """Renew until a renewal fails or the job ends (its failure is raised)."""
        kv = await self._bucket()
        while True:
            check_cancelled()
            done, _ = await asyncio.wait({task}, timeout=self._ttl / 3)
            if done:
                task.result()
                return
            try:
                async with asyncio.timeout(self._ttl / 3):
                    self._revision = await kv.update(
                        self.name, self.holder.encode(), last=self._revision
                    )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("lease %s renewal failed: %r", self.name, error)
                self._revision = None
                return

    async def _release(self) -> None:
        """On a clean stop, hand over at once instead of after the TTL."""
        if self._revision is None or self._kv is None:
            return
        revision, self._revision = self._revision, None
        try:
            async with asyncio.timeout(1):
                await self._kv.delete(self.name, last=revision)
        except Exception as error:
            log.debug("lease %s not released: %r", self.name, error)
