"""One Redis connection that every task of a process shares, their commands pipelined.

Redis answers a connection's commands in the order it read them, so a command is a future waiting
in line for its answer: no pool checkout, no per-command timeout task, no lock between tasks, and
what every task sends in one turn of the event loop goes out in one write. Packing and parsing are
hiredis's (C). The lock's hot path is three commands per acquisition: with redis-py's client
(pool, retry and observability layers) an acquisition cost 214 us of CPU here, with this 46.

It speaks RESP2 and handles what a lock needs: `redis://`, `rediss://` and `unix://` URLs with a
user, password and database. A broken connection fails the commands waiting on it with redis-py's
`ConnectionError` (an answer lost on the way is reported, never guessed), and the next command
connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError, ResponseError

Command = Sequence[str | bytes | int | float]

log = logging.getLogger(__name__)


class _Answers(asyncio.Protocol):
    """The connection: each answer goes to the oldest command still waiting. While commands wait,
    a connection that answers nothing for `patience` seconds (a Redis that hangs, a network that
    drops packets) is given up within twice that: its commands fail rather than hang. One timer
    per connection, not one per command."""

    def __init__(self, patience: float) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.lost: BaseException | None = None
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._patience, self._answered = patience, False
        self._timer: asyncio.TimerHandle | None = None
        self._why = "closed by the server"
        self._unsent: list[bytes] = []
        self.loop = asyncio.get_running_loop()  # made by connect(), inside the loop

    def send(self, payload: bytes, futures: Sequence[asyncio.Future[Any]]) -> None:
        """Queue the commands; what every task sends in one turn of the event loop goes out in one
        write at its end (a system call per command was a fifth of the lock's CPU). On a connection
        already lost they fail at once: nothing would ever answer them."""
        if self.lost is not None:
            for future in futures:
                future.set_exception(self.lost)
            return
        self.waiting.extend(futures)
        if not self._unsent:
            self.loop.call_soon(self._flush)
        self._unsent.append(payload)
        if self._timer is None:
            self._answered = False
            self._timer = self.loop.call_later(self._patience, self._check)

    def _flush(self) -> None:
        unsent, self._unsent = self._unsent, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(unsent))

    def _check(self) -> None:
        self._timer = None
        if not self.waiting or self.transport is None:
            return
        if not self._answered:
            self._why = f"no answer for {self._patience:g} s"
            self.transport.abort()
            return
        self._answered = False
        self._timer = self.loop.call_later(self._patience, self._check)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but write like one
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (answer := self._reader.gets()) is not False:
            self._answered = True
            if not self.waiting:
                continue  # nothing asked for it (RESP2 sends nothing unasked on this connection)
            future = self.waiting.popleft()
            if future.done():  # its caller was cancelled; the answer still had to be read
                continue
            if isinstance(answer, ResponseError):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or ConnectionError(f"connection to Redis lost: {exc or self._why}")
        if self._timer is not None:
            self._timer.cancel()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)


class Wire:
    """Commands on one shared connection, answered in order; see the module's docstring."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0, patience: float = 5.0) -> None:
        self._options = options_of(url)
        self._connect_timeout, self._patience = connect_timeout, patience
        self._answers: _Answers | None = None
        self._opening: asyncio.Future[_Answers] | None = None
        self._closed = False

    async def execute(self, *command: str | bytes | int | float) -> Any:
        """Send one command; its answer (an error answer is raised as `ResponseError`)."""
        future = self.send(*command)
        if future is None:
            answers = await self._connection()
            future = answers.loop.create_future()
            answers.send(_pack(command), (future,))
        return await future

    def send(self, *command: str | bytes | int | float) -> asyncio.Future[Any] | None:
        """Queue one command without awaiting anything (it goes out with this turn of the event
        loop's other commands); the future of its answer, or None while there is no connection
        (then `execute` it)."""
        answers = self._answers
        if answers is None or answers.lost is not None:
            return None
        future = answers.loop.create_future()
        answers.send(_pack(command), (future,))
        return future

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        """Send several commands in one write; their answers in order. An error answer is raised
        after every answer has come (the others ran)."""
        return await _ask(await self._connection(), commands)

    async def close(self) -> None:
        """Close the connection; commands sent after this fail."""
        self._closed = True
        answers, self._answers = self._answers, None
        if answers is not None and answers.transport is not None:
            answers.lost = answers.lost or ConnectionError("the connection to Redis was closed here")
            answers.transport.close()

    async def _connection(self) -> _Answers:
        answers = self._answers
        if answers is not None and answers.lost is None:
            return answers
        if self._closed:
            raise ConnectionError("the connection to Redis was closed here")
        # One attempt shared by every task that needs the connection, in a task of its own: a
        # caller cancelled meanwhile cancels neither the attempt nor the others' commands.
        if self._opening is None or self._opening.done():
            self._opening = asyncio.ensure_future(self._connect())
            self._opening.add_done_callback(_retrieved)
        answers = await asyncio.shield(self._opening)
        if answers.lost is not None:  # lost again before this caller woke up
            raise answers.lost
        return answers

    async def _connect(self) -> _Answers:
        answers = await connect(self._options, lambda: _Answers(self._patience), self._connect_timeout)
        first = hello(self._options)
        if self._options.get("db", 0):
            first.append(("SELECT", self._options["db"]))
        if first:
            # Answered before the connection is anyone's: nothing else is queued behind these.
            try:
                await _ask(answers, first)
            except BaseException:
                assert answers.transport is not None
                answers.transport.close()
                raise
        self._answers = answers
        return answers


async def _ask(answers: _Answers, commands: Sequence[Command]) -> list[Any]:
    """Send the commands in one write; every answer once all have come (they come in order, so
    awaiting each in turn costs no more than the last), else the first failure, a lost answer
    before an error answer (the caller must not think everything ran). Cancelled, it cancels
    them all."""
    futures = [answers.loop.create_future() for _ in commands]
    answers.send(b"".join(_pack(command) for command in commands), futures)
    results: list[Any] = []
    try:
        for future in futures:
            try:
                results.append(await future)
            except (ConnectionError, ResponseError) as failed:
                results.append(failed)
    except asyncio.CancelledError:
        for future in futures:
            future.cancel()
        raise
    failures = [result for result in results if isinstance(result, Exception)]
    if failures:
        raise next((f for f in failures if isinstance(f, ConnectionError)), failures[0])
    return results


def _retrieved(attempt: asyncio.Future[Any]) -> None:
    # Its callers get the failure; with none left, it must not be logged as never retrieved.
    if not attempt.cancelled():
        attempt.exception()


_P = TypeVar("_P", bound=asyncio.Protocol)


def _pack(command: Command) -> bytes:
    # hiredis's stub types the argument as a one-element tuple; it takes any length
    packed: bytes = hiredis.pack_command(tuple(command))  # type: ignore[arg-type]
    return packed


def options_of(url: str) -> dict[str, Any]:
    """What a `redis://`, `rediss://` or `unix://` URL says (redis-py's reading of it)."""
    return {**parse_url(url), "tls": url.startswith("rediss://")}


async def connect(options: dict[str, Any], protocol: Callable[[], _P], within: float) -> _P:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within):
            if "path" in options:
                _, connected = await loop.create_unix_connection(protocol, options["path"])
            else:
                context = ssl.create_default_context() if options["tls"] else None
                _, connected = await loop.create_connection(
                    protocol, options.get("host", "localhost"), options.get("port", 6379), ssl=context
                )
    except (OSError, TimeoutError) as error:
        raise ConnectionError(f"cannot connect to Redis: {error!r}") from error
    return connected


def hello(options: dict[str, Any]) -> list[Command]:
    """The commands a new connection starts with: AUTH when the URL has a password."""
    if options.get("password") is None:
        return []
    return [("AUTH", options.get("username") or "default", options["password"])]


class Script:
    """A Lua script run by its SHA (EVALSHA), sent whole once when Redis does not know it yet
    (after a restart or a SCRIPT FLUSH), like redis-py's `register_script`."""

    def __init__(self, wire: Wire, source: str) -> None:
        self._wire, self._source = wire, source
        self._sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, *, keys: Sequence[str], args: Sequence[str | int] = ()) -> Any:
        try:
            return await self._wire.execute("EVALSHA", self._sha, len(keys), *keys, *args)
        except ResponseError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
            return await self._wire.execute("EVAL", self._source, len(keys), *keys, *args)


class _Pushes(asyncio.Protocol):
    """A connection in subscribe mode: everything Redis sends goes to `on_push`."""

    def __init__(self, on_push: Callable[[Any], None]) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._on_push = on_push
        self._reader = hiredis.Reader(replyError=ResponseError, encoding="utf-8")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (push := self._reader.gets()) is not False:
            self._on_push(push)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class Subscriber:
    """Channels on one connection in subscribe mode: a message goes to `on_message(channel,
    data)`, and `on_subscribed(channel)` once Redis confirms a subscription. A lost connection is
    told to `on_lost()`, opened again every `RETRY` seconds and its channels subscribed again;
    messages sent meanwhile are missed (the caller has timers for that). A message costs a parse
    in C and one call here (redis-py's PubSub reads each through its Python parser, timeouts and
    a dict): every process hears every unlock of the keys it uses."""

    RETRY = 0.5

    def __init__(
        self,
        url: str,
        on_message: Callable[[str, str], None],
        on_subscribed: Callable[[str], None],
        on_lost: Callable[[], None] = lambda: None,
        *,
        connect_timeout: float = 5.0,
    ) -> None:
        self._options = options_of(url)
        self._on_message, self._on_subscribed, self._on_lost = on_message, on_subscribed, on_lost
        self._connect_timeout = connect_timeout
        self._channels: set[str] = set()
        self._pushes: _Pushes | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def subscribe(self, channel: str) -> None:
        if self._closed:
            return
        self._channels.add(channel)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="redis-subscriber")
        self._send("SUBSCRIBE", channel)

    def unsubscribe(self, *channels: str) -> None:
        self._channels.difference_update(channels)
        if channels:
            self._send("UNSUBSCRIBE", *channels)

    async def close(self) -> None:
        self._closed = True
        pushes = self._pushes
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if pushes is not None and pushes.transport is not None:
            pushes.transport.close()

    def _send(self, *command: str) -> None:
        # Not connected: `_run` subscribes to every channel once it is.
        if self._pushes is not None and self._pushes.transport is not None:
            self._pushes.transport.write(_pack(command))

    async def _run(self) -> None:
        down = False
        while True:
            try:
                pushes = await connect(self._options, lambda: _Pushes(self._push), self._connect_timeout)
            except ConnectionError as error:
                if not down:
                    log.warning("redis subscriber: %s; trying again every %ss", error, self.RETRY)
                down = True
                await asyncio.sleep(self.RETRY)
                continue
            if down:
                log.warning("redis subscriber: connected again")
            down = False
            first = [*hello(self._options)]
            if self._channels:
                first.append(("SUBSCRIBE", *self._channels))
            assert pushes.transport is not None
            pushes.transport.write(b"".join(_pack(command) for command in first))
            self._pushes = pushes
            try:
                await pushes.closed
            finally:
                self._pushes = None
            self._on_lost()
            log.warning("redis subscriber: connection lost; trying again every %ss", self.RETRY)
            down = True
            await asyncio.sleep(self.RETRY)

    def _push(self, push: Any) -> None:
        if isinstance(push, ResponseError):
            log.warning("redis subscriber: Redis answered %s", push)
        elif isinstance(push, list) and len(push) == 3:
            kind, channel, data = push
            if kind == "message":
                self._on_message(channel, data)
            elif kind == "subscribe":
                self._on_subscribed(channel)
