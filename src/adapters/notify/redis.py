"""Live events on Redis, shared by processes: an event published by any process reaches the
watchers of its stream on every process, in order, and a client reconnecting to any process
catches up from the history kept in Redis.

- A stream is a Redis stream `{prefix}events:{name}`; its ids ("<ms>-<seq>") are the events' ids.
  `publish` is one Lua script: append, trim, refresh the expiry, PUBLISH on the channel of the
  same name. The history keeps the last `keep_events` events and every event younger than
  `keep_seconds`, never more than `max_events`; an idle stream expires `keep_seconds` after its
  last event. The floor key remembers the newest event no longer kept (for a new stream: the
  newest event of its previous life, or nothing): a Last-Event-ID is replayed only from the
  floor to the head, else the client needs a snapshot. "0", the head of a stream that has had
  no event, replays everything since.
- One pub/sub connection per process, read by one task; a channel is subscribed while it has
  subscribers here. A subscriber subscribes, waits for Redis's confirmation, then reads head and
  history: live events up to the head are dropped, so nothing is lost or doubled in between.
- A subscriber `max_backlog` events behind is cut off: its iteration ends, never slowing others.
- Losing the pub/sub connection ends every subscription of the process (redis-py would reconnect
  silently, missing what was published meanwhile): their clients reconnect with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from application.ports import Event

log = logging.getLogger(__name__)

# KEYS[1] the stream, also its channel; KEYS[2] its floor; KEYS[3] its newest id ever (kept long
# after the stream expires). ARGV: type, data as JSON, keep_events, keep_ms, max_events, the
# newest id's ttl ms. Trims the oldest events that are both beyond the last keep_events and
# older than keep_ms (amortised: about one per event), then any beyond max_events.
PUBLISH = """
local fresh = redis.call('exists', KEYS[1]) == 0
local id = redis.call('xadd', KEYS[1], '*', 'type', ARGV[1], 'data', ARGV[2])
-- A new stream replays from the end of its last life (gone with its expiry), or from the start.
if fresh then redis.call('set', KEYS[2], redis.call('get', KEYS[3]) or '0-0') end
redis.call('set', KEYS[3], id, 'PX', ARGV[6])
local length, keep = redis.call('xlen', KEYS[1]), tonumber(ARGV[3])
if length > keep then
  local cutoff = tonumber(string.match(id, '^(%d+)')) - tonumber(ARGV[4]) - 1
  local old = redis.call('xrange', KEYS[1], '-', string.format('%.0f', cutoff), 'COUNT', length - keep)
  local over, last = length - tonumber(ARGV[5]), old[#old]
  if over > #old then last = redis.call('xrange', KEYS[1], '-', '+', 'COUNT', over)[over] end
  if last then
    local ms, seq = string.match(last[1], '^(%d+)-(%d+)$')
    redis.call('xtrim', KEYS[1], 'MINID', ms .. '-' .. string.format('%.0f', tonumber(seq) + 1))
    redis.call('set', KEYS[2], last[1])
  end
end
redis.call('pexpire', KEYS[1], ARGV[4])
redis.call('pexpire', KEYS[2], ARGV[4])
redis.call('publish', KEYS[1], id .. '\\n' .. ARGV[2] .. '\\n' .. ARGV[1])
return id
"""

# KEYS as above; ARGV[1] the client's Last-Event-ID as "<ms>-<seq>", or ''. Answers the head
# ('0' for none) and the events after the Last-Event-ID when all of them are kept, else nil.
READ = """
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local newest = redis.call('xrevrange', KEYS[1], '+', '-', 'COUNT', 1)[1]
if not newest then return {redis.call('get', KEYS[3]) or '0', false} end
local floor = redis.call('get', KEYS[2])
if ARGV[1] == '' or not floor or before(ARGV[1], floor) or before(newest[1], ARGV[1]) then
  return {newest[1], false}
end
return {newest[1], redis.call('xrange', KEYS[1], '(' .. ARGV[1], '+')}
"""

# How long a stream's newest id outlives the stream: a client back within it after the stream
# expired is told to take a snapshot, never given a replay that skips what expired.
NEWEST_KEPT_MS = 7 * 24 * 3600 * 1000

_ID = re.compile(r"(\d{1,15})-(\d{1,15})")


def _order(event_id: str) -> tuple[int, int] | None:
    match = _ID.fullmatch(event_id)
    return (int(match[1]), int(match[2])) if match else None


def _connection(pubsub: PubSub) -> Connection | None:
    # redis-py types the pub/sub connection as always None.
    return cast("Connection | None", pubsub.connection)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Inbox:
    """A subscriber's live events not read yet."""

    def __init__(self, max_backlog: int) -> None:
        self.after = (0, 0)
        """Events up to this id were handed out already (the head at subscribe time)."""
        self._events: deque[tuple[tuple[int, int], Event]] = deque()
        self._max_backlog, self._ended, self._ready = max_backlog, False, asyncio.Event()

    def put(self, order: tuple[int, int], event: Event) -> None:
        if len(self._events) >= self._max_backlog:
            self.end()
        elif not self._ended:
            self._events.append((order, event))
            self._ready.set()

    def end(self) -> None:
        self._ended = True
        self._ready.set()

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            while self._events:
                order, event = self._events.popleft()
                if order > self.after:
                    yield event
            if self._ended:
                return
            self._ready.clear()
            await self._ready.wait()


@dataclass
class RedisSubscription:
    missed: list[Event] | None
    head: str
    _inbox: _Inbox

    def __aiter__(self) -> AsyncIterator[Event]:
        return aiter(self._inbox)


@dataclass
class _Channel:
    inboxes: set[_Inbox] = field(default_factory=set)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    lost: BaseException | None = None


class _Feed:
    """The process's one pub/sub connection, read by one task, fanning events out to inboxes."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._channels: dict[str, _Channel] = {}
        # Redis confirms subscriptions in the order they were asked for, channel by channel.
        self._owed: dict[str, deque[asyncio.Event]] = {}
        self._commands = asyncio.Lock()
        self._discarding: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def listen(self, channel: str, inbox: _Inbox) -> AsyncIterator[None]:
        """Deliver the channel's events to the inbox from Redis's confirmation to the block's end."""
        state = self._channels.get(channel)
        first = state is None
        if state is None:
            state = self._channels[channel] = _Channel()
        state.inboxes.add(inbox)
        try:
            if first:
                # Shielded: the others waiting on this channel count on the subscription.
                await asyncio.shield(self._subscribe(channel, state))
            await state.subscribed.wait()
            if state.lost is not None:
                raise RedisConnectionError("live events: pub/sub connection lost") from state.lost
            yield
        finally:
            state.inboxes.discard(inbox)
            if not state.inboxes and self._channels.get(channel) is state:
                del self._channels[channel]
                await asyncio.shield(self._unsubscribe(channel))

    async def _subscribe(self, channel: str, state: _Channel) -> None:
        async with self._commands:
            pubsub = self._pubsub = self._pubsub or self._client.pubsub()
            self._owed.setdefault(channel, deque()).append(state.subscribed)
            try:
                if _connection(pubsub) is None:
                    await pubsub.connect()  # type: ignore[no-untyped-call]
                    if (connection := _connection(pubsub)) is not None:
                        connection.register_connect_callback(self._reconnected)  # type: ignore[no-untyped-call]
                await pubsub.subscribe(channel)
            except Exception as error:
                self._lose(pubsub, error)
                raise
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(pubsub), name="live-events")

    async def _unsubscribe(self, channel: str) -> None:
        # A subscriber leaving must not fail (nor hide its cancellation) for want of Redis.
        async with self._commands:
            if (pubsub := self._pubsub) is not None:
                try:
                    await pubsub.unsubscribe(channel)
                except Exception as error:
                    self._lose(pubsub, error)

    def _reconnected(self, connection: Connection) -> None:
        """redis-py reconnected the pub/sub connection: what was published meanwhile is lost."""
        error = RedisConnectionError("live events: pub/sub connection was lost and re-established")
        if self._pubsub is not None and _connection(self._pubsub) is connection:
            self._lose(self._pubsub, error)
        raise error

    async def _read(self, pubsub: PubSub) -> None:
        while self._pubsub is pubsub:
            try:
                message = await pubsub.get_message(timeout=None)
            except Exception as error:
                self._lose(pubsub, error)
                return
            if message is not None:
                self._deliver(message)

    def _deliver(self, message: dict[str, Any]) -> None:
        channel = _text(message["channel"])
        if message["type"] == "subscribe" and (owed := self._owed.get(channel)):
            owed.popleft().set()
            if not owed:
                del self._owed[channel]
        elif message["type"] == "message" and (state := self._channels.get(channel)):
            event_id, data, event_type = _text(message["data"]).split("\n", 2)
            event, order = Event(event_id, event_type, json.loads(data)), _order(event_id)
            assert order is not None, event_id
            for inbox in state.inboxes:
                inbox.put(order, event)

    def _lose(self, pubsub: PubSub, error: BaseException) -> None:
        """End every subscription on this connection; the next subscriber opens a new one."""
        if self._pubsub is not pubsub:
            return
        channels, self._channels, self._owed, self._pubsub = self._channels, {}, {}, None
        if channels:
            log.warning("live events: ending the subscriptions of %d channels: %s", len(channels), error)
        for state in channels.values():
            state.lost = error
            state.subscribed.set()
            for inbox in state.inboxes:
                inbox.end()
        reader, self._reader = self._reader, None
        task = asyncio.create_task(self._discard(pubsub, reader))
        self._discarding.add(task)
        task.add_done_callback(self._discarding.discard)

    async def _discard(self, pubsub: PubSub, reader: asyncio.Task[None] | None) -> None:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        async with self._commands:
            if (connection := _connection(pubsub)) is not None:
                # The connection goes back to the pool, to serve other commands.
                connection.deregister_connect_callback(self._reconnected)  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._pubsub is not None:
            self._lose(self._pubsub, RedisConnectionError("live events: closed"))
        await asyncio.gather(*self._discarding)


class RedisNotifier:
    """The notifier shared by every process that talks to the same Redis."""

    def __init__(
        self,
        client: Redis,
        prefix: str = "",
        keep_events: int = 100,
        keep_seconds: float = 600.0,
        max_backlog: int = 1000,
        max_events: int = 10_000,
    ) -> None:
        self._client, self._prefix, self._owns_client = client, prefix, False
        keep_ms = str(max(1, round(keep_seconds * 1000)))
        self._keep = [str(keep_events), keep_ms, str(max_events), str(NEWEST_KEPT_MS)]
        self._max_backlog = max_backlog
        self._feed = _Feed(client)
        self._publish = client.register_script(PUBLISH)
        self._read = client.register_script(READ)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "", max_connections: int = 100, **options: Any
    ) -> RedisNotifier:
        # Blocking: a burst of publishers or subscribers queues for a connection instead of failing.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=5, socket_connect_timeout=5
        )
        notifier = cls(Redis.from_pool(pool), prefix=prefix, **options)
        notifier._owns_client = True
        return notifier

    async def close(self) -> None:
        await self._feed.close()
        if self._owns_client:
            await self._client.aclose()

    def key(self, stream: str) -> str:
        """The stream's key, and the channel its events are published on."""
        return f"{self._prefix}events:{stream}"

    def _keys(self, stream: str) -> list[str]:
        return [
            self.key(stream),
            f"{self._prefix}events-floor:{stream}",
            f"{self._prefix}events-last:{stream}",
        ]

    async def publish(self, stream: str, event_type: str, data: Mapping[str, Any]) -> None:
        encoded = json.dumps(dict(data), separators=(",", ":"))
        await self._publish(keys=self._keys(stream), args=[event_type, encoded, *self._keep])

    async def publish_all(self, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """One round trip for many events (a pipeline of the same script)."""
        async with self._client.pipeline(transaction=False) as pipeline:
            for stream, event_type, data in events:
                encoded = json.dumps(dict(data), separators=(",", ":"))
                args = [event_type, encoded, *self._keep]
                await self._publish(keys=self._keys(stream), args=args, client=pipeline)
            await pipeline.execute()

    @asynccontextmanager
    async def subscribe(self, stream: str, last_event_id: str | None) -> AsyncIterator[RedisSubscription]:
        inbox = _Inbox(self._max_backlog)
        async with self._feed.listen(self.key(stream), inbox):
            # "0" is the head of a stream with no events yet: everything since is news.
            resume = "0-0" if last_event_id == "0" else last_event_id
            resume = resume if resume is not None and _order(resume) else ""
            head, kept = await self._read(keys=self._keys(stream), args=[resume])
            head = _text(head)
            inbox.after = _order(head) or (0, 0)
            missed = None if kept is None else [self._event(entry) for entry in kept]
            yield RedisSubscription(missed, head, inbox)

    @staticmethod
    def _event(entry: list[Any]) -> Event:
        event_id, fields = entry
        values = {_text(name): _text(value) for name, value in zip(fields[::2], fields[1::2], strict=True)}
        return Event(_text(event_id), values["type"], json.loads(values["data"]))
