"""A rebuild's receiving path (重建读取): a pull consumer read over a socket of its own.

nats-py turns every message into a `Msg` (its headers parsed, a subject and a reply string
decoded) and passes it through two asyncio queues: ~20–25 µs per message, most of what the
process that receives a rebuild spends. A rebuild needs only each message's stream sequence
and its bytes. So the JetStream API calls (creating and deleting the consumer) still go
through nats-py, and the messages come over a second, plain connection to the same server,
read in large chunks and cut with `bytes.find`:

- an ephemeral pull consumer, `AckPolicy.NONE`, from the wanted sequence on, in stream order:
  what an ordered consumer delivers, without acknowledgements or flow control;
- one pull request of `batch` messages at a time (`no_wait`: whatever is there, then a status
  message), the next sent as soon as the previous one is fulfilled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import ParseResult

from nats.aio.client import Client
from nats.js import JetStreamContext

from shared.consumer import pulled_from
from shared.relay import POSITION_HEADER
from shared.streams import StreamSpec

Payloads = list[tuple[int, bytes]]
"""(store position, message bytes) of one batch: cheap to hand to another process."""

Received = list[tuple[int, int | None, bytes]]
"""(stream sequence, store position from the relay's header, message bytes)."""

CHUNK = 1 << 20
MISSING = -1
POSITION = b"\r\n" + POSITION_HEADER.encode() + b":"


def header_position(headers: bytes) -> int | None:
    """The relay's store position in a message's header block, if it has one."""
    at = headers.find(POSITION)
    if at < 0:
        return None
    start = at + len(POSITION)
    return int(headers[start : headers.find(b"\r\n", start)])


class ProtocolError(RuntimeError):
    """The server said something a pull consumer's reader does not expect."""


def ack_sequence(reply: bytes) -> int:
    """The stream sequence in a JetStream reply subject (`$JS.ACK.<stream>.<consumer>.
    <delivered>.<stream seq>...`, or with a domain and an account hash before the stream)."""
    tokens = reply.split(b".")
    if len(tokens) == 9:
        return int(tokens[5])
    if len(tokens) >= 11:
        return int(tokens[7])
    raise ProtocolError(f"not a JetStream reply subject: {reply!r}")


class PullReader:
    """One plain NATS connection that reads a pull consumer's batches."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inbox: bytes
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.inbox = inbox
        self.buffer = b""
        self.position = 0

    @classmethod
    async def open(
        cls,
        url: ParseResult,
        name: str,
        inbox: str,
        user: str | None = None,
        password: str | None = None,
    ) -> PullReader:
        """Connect as `user` (or the URL's), receiving on `inbox`: one of the user's own
        inboxes, the only subjects its NATS permissions let it subscribe to."""
        reader, writer = await asyncio.open_connection(
            url.hostname, url.port or 4222, limit=4 * CHUNK
        )
        self = cls(reader, writer, inbox.encode())
        info = await self._line()
        if not info.startswith(b"INFO "):
            raise ProtocolError(f"expected INFO, got {info[:80]!r}")
        options: dict[str, object] = {
            "verbose": False,
            "pedantic": False,
            "headers": True,
            "no_responders": True,
            "protocol": 1,
            "lang": "python",
            "version": "shangliang-rebuild",
            "name": name,
        }
        if user or url.username:
            options.update(user=user or url.username, **{"pass": password or url.password or ""})
        writer.write(b"CONNECT " + json.dumps(options).encode() + b"\r\nPING\r\n")
        while (line := await self._line()) != b"PONG":
            if line.startswith(b"-ERR"):
                raise ProtocolError(line.decode(errors="replace"))
        writer.write(b"SUB " + self.inbox + b" 1\r\n")
        return self

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    async def _fill(self) -> None:
        chunk = await self.reader.read(CHUNK)
        if not chunk:
            raise ConnectionError("the NATS server closed the rebuild's connection")
        self.buffer = self.buffer[self.position :] + chunk
        self.position = 0

    async def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n", self.position)) < 0:
            await self._fill()
        line = self.buffer[self.position : end]
        self.position = end + 2
        return line

    async def pull(self, subject: bytes, batch: int) -> Received:
        """Ask for up to `batch` messages; the ones the server has, in stream order."""
        request = json.dumps({"batch": batch, "no_wait": True}).encode()
        self.writer.write(b"PUB %s %s %d\r\n%s\r\n" % (subject, self.inbox, len(request), request))
        received: Received = []
        while len(received) < batch:
            sequence, position, payload = await self._message()
            if sequence == MISSING:
                break  # a status: nothing more for this request now
            received.append((sequence, position, payload))
        return received

    async def _message(self) -> tuple[int, int | None, bytes]:
        """The next message: (stream sequence, store position, bytes), or (MISSING, None,
        status) for a status."""
        while True:
            buffer, position = self.buffer, self.position
            end = buffer.find(b"\r\n", position)
            if end < 0:
                await self._fill()
                continue
            line = buffer[position:end]
            if line.startswith(b"HMSG "):
                # HMSG <subject> <sid> [reply] <header bytes> <total bytes>
                fields = line.split(b" ")
                headers, total = int(fields[-2]), int(fields[-1])
                reply = fields[3] if len(fields) == 6 else None
            elif line.startswith(b"MSG "):
                fields = line.split(b" ")
                headers, total = 0, int(fields[-1])
                reply = fields[3] if len(fields) == 5 else None
            elif line == b"PING":
                self.writer.write(b"PONG\r\n")
                self.position = end + 2
                continue
            elif line in (b"PONG", b"+OK") or line.startswith(b"INFO "):
                self.position = end + 2
                continue
            else:
                raise ProtocolError(line.decode(errors="replace"))
            start = end + 2
            if len(buffer) < start + total + 2:
                await self._fill()
                continue
            self.position = start + total + 2
            if reply is None:
                return MISSING, None, buffer[start : start + headers]
            position = header_position(buffer[start : start + headers]) if headers else None
            return ack_sequence(reply), position, buffer[start + headers : start + total]


async def pulled(
    nc: Client,
    js: JetStreamContext,
    spec: StreamSpec,
    start: int,
    stop: int,
    batch: int,
) -> AsyncIterator[tuple[Payloads, int]]:
    """Batches of the stream's messages after sequence `start` up to `stop`, in order, each
    with the stream sequence it reaches. A message is kept with its store position (in a
    stream gathered from several stores, its sequence); one without a position is skipped.

    Ends early when the server has nothing more (messages removed meanwhile).
    """
    stream = spec.name
    consumer = await js.add_consumer(stream, config=pulled_from(start + 1, inactive_seconds=60.0))
    name = consumer.name
    assert name is not None
    assert nc.connected_url is not None
    reader = await PullReader.open(
        nc.connected_url,
        "shangliang-rebuild",
        nc.new_inbox(),
        nc.options.get("user"),
        nc.options.get("password"),
    )
    subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}".encode()
    position = start
    try:
        while position < stop:
            received = await reader.pull(subject, batch)
            if not received:
                return
            inside = [m for m in received if m[0] <= stop]
            if inside:
                yield (
                    [
                        (n if spec.sourced else at, data)
                        for n, at, data in inside
                        if spec.sourced or at is not None
                    ],
                    inside[-1][0],
                )
            position = received[-1][0]
    finally:
        await reader.close()
        await js.delete_consumer(stream, name)
