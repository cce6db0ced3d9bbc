"""A TCP proxy in front of a server, for tests that need the connection to fail as a network or
a restarting server makes it fail: `cut()` drops every open connection at once, `refuse()` turns
new ones away until `admit()`. It records what went each way, per connection, so a test can see
what a client sent when it came back (its Last-Event-ID) and what it was answered."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Connection:
    sent: bytearray = field(default_factory=bytearray)
    """What the client sent."""
    answered: bytearray = field(default_factory=bytearray)
    """What the server answered."""
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class CuttableProxy:
    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._loop = asyncio.new_event_loop()
        self._refusing = False
        self.connections: list[Connection] = []
        self.port = 0

    @contextmanager
    def running(self) -> Iterator[CuttableProxy]:
        started = threading.Event()
        thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        thread.start()
        assert started.wait(10), "the proxy did not start"
        try:
            yield self
        finally:
            self._call(self._close_all())
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)

    def cut(self) -> None:
        """Every open connection ends at once, without a goodbye (as a dropped stream does)."""
        self._call(self._close_all())

    def refuse(self) -> None:
        self._refusing = True

    def admit(self) -> None:
        self._refusing = False

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    def _call(self, work: object) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(10)  # type: ignore[arg-type]

    async def _close_all(self) -> None:
        for connection in self.connections:
            for writer in connection.writers:
                writer.transport.abort()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            client_writer.transport.abort()
            return
        connection = Connection(writers=[client_writer, server_writer])
        self.connections.append(connection)
        await asyncio.gather(
            self._pipe(client_reader, server_writer, connection.sent, connection),
            self._pipe(server_reader, client_writer, connection.answered, connection),
        )

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bytearray, connection: Connection
    ) -> None:
        try:
            while data := await source.read(65536):
                record.extend(data)
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Either side gone: both go, as a real connection through a dead hop would.
            for writer in connection.writers:
                writer.transport.abort()
