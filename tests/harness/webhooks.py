"""A store's webhook endpoint for tests: a real HTTP server on a free local port that keeps every
request it is sent and answers the statuses it is told to, in turn (200 once they run out)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

READ_WITHIN = 10.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes


@dataclass
class WebhookReceiver:
    port: int = 0
    answers: list[int] = field(default_factory=list)
    """Statuses for the next requests, first first; then 200."""
    delay: float = 0.0
    """How long to wait before answering."""
    received: list[Received] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/waitline"

    async def requests(self, count: int, within: float = READ_WITHIN) -> list[Received]:
        """The first `count` requests, once that many arrived."""
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received[:count]

    async def quiet_for(self, seconds: float) -> None:
        """No more requests arrive for this long."""
        before = len(self.received)
        await asyncio.sleep(seconds)
        assert len(self.received) == before, self.received[before:]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(method, path, headers, body))
            self._arrived.set()
            status = self.answers.pop(0) if self.answers else 200
            await asyncio.sleep(self.delay)
            writer.write(f"HTTP/1.1 {status} Told\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await server.wait_closed()


def unused_port() -> int:
    """A local port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def verify(signature_header: str, body: bytes, secret: str) -> int:
    """Check `Waitline-Signature` as a store's endpoint would (README); its time, if it is right."""
    parts = dict(part.split("=", 1) for part in signature_header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"]), "the signature does not match"
    return int(parts["t"])


async def until(condition: Callable[[], object], what: str, within: float = READ_WITHIN) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.01)
