"""Rebuild (重建) and check (核对) of the read model from the three streams.

How a rebuild replaces the live view without a pause:

1. `rebuild` creates a new file `projections.<UTC timestamp>.sqlite` beside the live one and
   replays INTAKE, MEETINGS and SUPERVISION into it from sequence 1, each in stream order
   (an ephemeral pull consumer read over a plain connection: pull.py), in large batches, up
   to each stream's last sequence at the start. A worker process loads
   the file in bulk (bulk.py: facts as they come, every entity derived once at the end, the
   tracking records last, then fsync) while this one receives. The live service goes on
   answering from its own file.
2. When the new file is complete, the pointer file `projections.current` (which names the
   live file; absent means `projections.sqlite`) is replaced atomically (write a temporary
   file, fsync, `os.replace`). A reader sees the old name or the new one, never half of one.
3. The running service checks the pointer every second (`PointerWatch`). When it names
   another file, the service stops its consumers, opens the new file, answers from it, and
   restarts the consumers there: they resume after the new file's own tracking records, so
   whatever was published during the rebuild is applied next. The old view is closed a few
   seconds later, once requests that began on it are done; its file is left for inspection.

With the read model in PostgreSQL (services/projections/stores.py) a rebuild fills a new
schema through the live path and switches a pointer table instead; `check` is the same.

`check` replays the streams into a temporary file up to exactly the positions the live
view has applied (store positions, found in the streams by `sequence_after`), then compares
every row; if the live view moved on meanwhile, it replays
further and compares again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Tracking
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError, create_model

from services.projections.bulk import BulkLoad, facts_after
from services.projections.facts import Fact
from services.projections.pull import Payloads, pulled
from services.projections.views import ProjectionView, open_projection_view
from shared.consumer import Delivered, sequence_after
from shared.contracts import CONTRACTS, Contract, Envelope, UndecodableMessage, decode
from shared.streams import MEETINGS_STREAM, SUPERVISION_STREAM, StreamSpec, intake_streams

UPSTREAMS = (*intake_streams(), MEETINGS_STREAM, SUPERVISION_STREAM)
"""With INTAKE_COUNTIES when county offices run leaf nodes (SHANGLIANG_LEAF_OFFICES)."""
POINTER = "projections.current"
DEFAULT_FILE = "projections.sqlite"


def live_file(data_dir: Path) -> Path:
    """The file the service answers from: named by the pointer, or the default."""
    try:
        name = (data_dir / POINTER).read_text().strip()
    except FileNotFoundError:
        return data_dir / DEFAULT_FILE
    return data_dir / name


def switch_to(data_dir: Path, new_file: Path) -> None:
    """Point the service at `new_file`, atomically."""
    fd, temporary = tempfile.mkstemp(dir=data_dir, prefix=".pointer-")
    with os.fdopen(fd, "w") as out:
        out.write(new_file.name + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, data_dir / POINTER)


def new_file_name(data_dir: Path) -> Path:
    return data_dir / f"projections.{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}.sqlite"


FEWER_COLLECTIONS = (50_000, 20, 100)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the garbage collector less often while large batches are alive.

    A batch of 20,000 decoded messages and their facts is many container objects; at the
    default thresholds the collector scanned them again and again, which halved the rate.
    """
    before = gc.get_threshold()
    gc.set_threshold(*FEWER_COLLECTIONS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


async def stream_ends(js: JetStreamContext) -> dict[str, int]:
    """Each upstream stream's last sequence now (0 for a stream that does not exist yet)."""
    ends = {}
    for spec in UPSTREAMS:
        try:
            ends[spec.name] = (await js.stream_info(spec.name)).state.last_seq
        except NotFoundError:
            ends[spec.name] = 0  # no service has published yet: nothing to replay
    return ends


Applier = Callable[[str, Payloads, int], Awaitable[None]]


TYPED_ENVELOPES: dict[str, type[Envelope]] = {
    name: create_model(f"{contract.__name__}Envelope", __base__=Envelope, data=(contract, ...))
    for name, contract in CONTRACTS.items()
}
"""An envelope whose data is validated as its contract in the same pass over the bytes."""
TYPE_MARK = b'"type":"'


def decode_typed(payload: bytes) -> tuple[Envelope, Contract | None]:
    """`decode`, in one pass when the type named in the bytes is a known contract's.

    The type is looked for in the bytes without parsing them; the result is kept only if
    the envelope's own `type` names it. Anything else (another layout, an unknown type, an
    invalid message) goes through `decode`, so the outcome is always `decode`'s (the
    envelope's data is then the contract itself).
    """
    start = payload.find(TYPE_MARK) + len(TYPE_MARK)
    end = payload.find(b'"', start)
    typed = TYPED_ENVELOPES.get(payload[start:end].decode(errors="replace"))
    if start >= len(TYPE_MARK) and typed is not None:
        try:
            envelope = typed.model_validate_json(payload)
        except ValidationError:
            pass
        else:
            contract: Contract = envelope.data  # type: ignore[assignment]
            if envelope.type == contract.type_name():
                return envelope, contract
    return decode(payload)


def decoded(payloads: Payloads) -> list[Delivered]:
    delivered = []
    for position, data in payloads:
        try:
            envelope, contract = decode_typed(data)
        except UndecodableMessage:
            continue  # the live consumer skips it too (and logs it)
        delivered.append(Delivered(position, envelope, contract))
    return delivered


def apply_payloads(view: ProjectionView, stream: str, payloads: Payloads, last: int) -> None:
    """Decode one batch and apply it with the tracking record of its last position."""
    view.apply(decoded(payloads), Tracking(stream, last))


def in_thread(view: ProjectionView) -> Applier:
    """Apply in a worker thread of this process."""

    async def apply(stream: str, payloads: Payloads, last: int) -> None:
        await asyncio.to_thread(apply_payloads, view, stream, payloads, last)

    return apply


_worker_load: BulkLoad | None = None
"""The load a rebuild's worker process writes."""


def _open_in_worker(path: str) -> None:
    global _worker_load
    gc.set_threshold(*FEWER_COLLECTIONS)
    _worker_load = BulkLoad(Path(path))


def _add_in_worker(stream: str, payloads: Payloads, last: int) -> None:
    assert _worker_load is not None
    _worker_load.add(stream, decoded(payloads), last)
    _keep_out_of_collections()


def _add_facts_in_worker(stream: str, facts: list[tuple[Any, ...]], last: int) -> None:
    assert _worker_load is not None
    _worker_load.add_facts(stream, (tuple.__new__(Fact, f) for f in facts), last)
    _keep_out_of_collections()


def _keep_out_of_collections() -> None:
    # What outlives a batch (the facts kept for the end) makes no cycles: leave it out of
    # every later collection, which would otherwise scan all of it again and again.
    gc.freeze()


def _finish_in_worker(streams: list[str]) -> None:
    assert _worker_load is not None
    _worker_load.finish(streams)


class Loader:
    """A rebuild's bulk load in a process of its own, so decoding, deriving and writing do
    not wait for the GIL that receiving holds: on two cores the two run side by side.

    Its calls run one after another in the order they are made. `apply` returns once the
    batch is handed over. Receiving costs less than loading, so when the worker is behind
    (`BEHIND` batches wait for it) this process decodes the batch into facts itself and
    hands over those: decoding, the largest share of loading, is split between the two
    cores as the worker keeps up or not, whatever else the machine runs.
    """

    BEHIND = 2

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        # Start the process (its imports take most of a second) while the first batch arrives.
        pool.submit(os.getpid)
        self.pending: collections.deque[asyncio.Future[None]] = collections.deque()
        self.handed: dict[str, int] = {}

    async def apply(self, stream: str, payloads: Payloads, last: int) -> None:
        while self.pending and self.pending[0].done():
            await self.pending.popleft()  # raises a failure of the worker's
        if len(self.pending) < self.BEHIND:
            call = self.loop.run_in_executor(self.pool, _add_in_worker, stream, payloads, last)
        else:
            facts = facts_after(stream, decoded(payloads), self.handed.get(stream, 0))
            # As plain tuples: a named tuple is pickled through a Python call each (~4 µs
            # per fact in this process), a tuple in C.
            plain = list(map(tuple, facts))
            call = self.loop.run_in_executor(self.pool, _add_facts_in_worker, stream, plain, last)
        self.handed[stream] = last
        self.pending.append(call)
        if len(self.pending) > 2 * self.BEHIND:
            await self.pending.popleft()

    async def finish(self) -> None:
        while self.pending:
            await self.pending.popleft()
        streams = [spec.name for spec in UPSTREAMS]
        await self.loop.run_in_executor(self.pool, _finish_in_worker, streams)


@contextlib.asynccontextmanager
async def in_process(path: Path) -> AsyncIterator[Loader]:
    with ProcessPoolExecutor(
        1, mp_context=get_context("spawn"), initializer=_open_in_worker, initargs=(str(path),)
    ) as pool:
        yield Loader(pool)


async def replay(
    js: JetStreamContext,
    apply: Applier,
    spec: StreamSpec,
    start: int,
    stop: int,
    batch_size: int = 20_000,
    advance: Callable[[int], object] | None = None,
) -> int:
    """Apply a stream from after sequence `start` up to sequence `stop`, in stream order;
    the view tracks the messages' store positions.

    A pull consumer from `start + 1` on (pull.py) delivers what an ordered consumer would;
    the next batch is received while the previous one is applied.
    """
    if start >= stop:
        return start
    # The JetStream API calls go through the caller's connection; pull.py reads the
    # messages over a connection of its own to the same server.
    batches = pulled(js._nc, js, spec, start, stop, batch_size)
    position = start
    applying: asyncio.Task[None] | None = None
    try:
        async for kept, last in batches:
            if applying is not None:
                await applying
            if kept:
                applying = asyncio.create_task(apply(spec.name, kept, kept[-1][0]))
            if advance is not None:
                advance(last - position)
            position = last
        if applying is not None:
            await applying
    finally:
        await batches.aclose()
    if position < stop:
        raise RuntimeError(f"{spec.name} ends at {position}, before {stop}: messages were removed")
    return position


async def rebuild(
    js: JetStreamContext,
    data_dir: Path,
    progress: Callable[[int, int], Any] | None = None,
    switch: bool = True,
) -> Path:
    """Replay every stream into a new file and, when it is complete, make it the live one.

    `progress(done, total)` is called as batches are applied (for a progress bar).
    """
    ends = await stream_ends(js)
    target = new_file_name(data_dir)
    total = sum(ends.values())
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    with fewer_collections():
        async with in_process(target) as loader:
            for spec in UPSTREAMS:
                await replay(js, loader.apply, spec, 0, ends[spec.name], advance=advance)
            await loader.finish()
    if switch:
        switch_to(data_dir, target)
    return target


Difference = tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]]]
"""(table, rows only the live view has, rows only the rebuilt one has)."""


Rows = dict[str, list[tuple[Any, ...]]]


def differences(live: Rows, rebuilt: Rows) -> list[Difference]:
    found = []
    for table in sorted(set(live) | set(rebuilt)):
        ours, theirs = set(live.get(table, [])), set(rebuilt.get(table, []))
        if ours != theirs:
            found.append((table, sorted(ours - theirs, key=repr), sorted(theirs - ours, key=repr)))
    return found


async def check(
    js: JetStreamContext, live: ProjectionView, scratch: Path, attempts: int = 5
) -> list[Difference]:
    """Rebuild into `scratch` up to the live view's positions and compare every row."""
    rebuilt = open_projection_view(str(scratch))
    apply = in_thread(rebuilt)
    try:
        with fewer_collections():
            for _ in range(attempts):
                positions = await asyncio.to_thread(live_positions, live)
                for spec in UPSTREAMS:
                    done = await asyncio.to_thread(rebuilt.max_tracking_id, spec.name) or 0
                    # Views track store positions; the stream is replayed by its sequences.
                    start = await sequence_after(js, spec, done) - 1
                    stop = await sequence_after(js, spec, positions[spec.name]) - 1
                    await replay(js, apply, spec, start, stop)
                snapshot = await asyncio.to_thread(live_snapshot, live)
                if snapshot[0] == positions:
                    return differences(snapshot[1], rebuilt.dump())
            raise RuntimeError("the live view kept moving; try again when it is quieter")
    finally:
        rebuilt.datastore.close()


def live_positions(view: ProjectionView) -> dict[str, int]:
    return {spec.name: view.max_tracking_id(spec.name) or 0 for spec in UPSTREAMS}


def live_snapshot(view: ProjectionView) -> tuple[dict[str, int], Rows]:
    return view.snapshot(spec.name for spec in UPSTREAMS)
