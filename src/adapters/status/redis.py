"""Queued requests' statuses on Redis, shared by processes: a request queued by one API process and
decided by a consumer can be polled on any, and its waiters wake as soon as the outcome is put.

- A status is one JSON value with a TTL; `put` is one Lua script that keeps a decided status
  from being replaced by an undecided one and publishes ended statuses on the key's channel.
- One pub/sub connection per process for all waiters: a channel is subscribed while it has
  waiters. A waiter subscribes, then reads, then sleeps: an outcome put in between still wakes it.
- Redis dropping the pub/sub connection costs at most the waiters' `within`: redis-py
  reconnects and subscribes its channels again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from application.requests import RequestState, RequestStatus

log = logging.getLogger(__name__)

# What the script must never replace with an undecided status, as `RequestStatus.decided` says.
DECIDED = [state.value for state in RequestState if RequestStatus("", 0, state).decided]

# KEYS[1] the status, also its channel; ARGV[1] the new status as JSON, ARGV[2] its TTL in ms,
# ARGV[3] '1' when it is decided, ARGV[4] '1' when it has ended, ARGV[5..] the decided states.
PUT = """
local known = redis.call('get', KEYS[1])
if known and ARGV[3] ~= '1' then
  local state = cjson.decode(known).state
  for i = 5, #ARGV do
    if state == ARGV[i] then return 0 end
  end
end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[4] == '1' then redis.call('publish', KEYS[1], ARGV[1]) end
return 1
"""


# KEYS[1] the status; ARGV the decided states.
FORGET = """
local known = redis.call('get', KEYS[1])
if not known then return 0 end
local state = cjson.decode(known).state
for i = 1, #ARGV do
  if state == ARGV[i] then return 0 end
end
return redis.call('del', KEYS[1])
"""


def encode(status: RequestStatus) -> str:
    return json.dumps(asdict(status), separators=(",", ":"))


def decode(value: str | bytes) -> RequestStatus:
    known = json.loads(value)
    return RequestStatus(**{**known, "state": RequestState(known["state"])})


@dataclass
class _Channel:
    waiters: set[asyncio.Event] = field(default_factory=set)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)


class _Outcomes:
    """The process's one pub/sub connection, read by one task, shared by every waiter."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._channels: dict[str, _Channel] = {}
        # Redis confirms subscriptions in the order they were asked for, channel by channel.
        self._owed: dict[str, deque[asyncio.Event]] = {}
        self._commands = asyncio.Lock()

    @asynccontextmanager
    async def heard(self, channel: str) -> AsyncIterator[asyncio.Event]:
        """Listen on the channel until the block ends; the event is set when an outcome is heard."""
        state = self._channels.get(channel)
        first = state is None
        if state is None:
            state = self._channels[channel] = _Channel()
        heard = asyncio.Event()
        state.waiters.add(heard)
        try:
            if first:
                # Shielded: the others waiting on this channel count on the subscription.
                await asyncio.shield(self._subscribe(channel, state.subscribed))
            await state.subscribed.wait()
            yield heard
        finally:
            state.waiters.discard(heard)
            if not state.waiters and self._channels.get(channel) is state:
                del self._channels[channel]
                await asyncio.shield(self._unsubscribe(channel))

    async def _subscribe(self, channel: str, confirmed: asyncio.Event) -> None:
        async with self._commands:
            if self._pubsub is None:
                self._pubsub = self._client.pubsub()
            owed = self._owed.setdefault(channel, deque())
            owed.append(confirmed)
            try:
                await self._pubsub.subscribe(channel)
            except BaseException:
                if confirmed in owed:
                    owed.remove(confirmed)  # else it would take the next subscription's confirmation
                raise
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(self._pubsub), name="request-outcomes")

    async def _unsubscribe(self, channel: str) -> None:
        # A waiter leaving must not fail (nor hide its cancellation) for want of Redis.
        try:
            async with self._commands:
                if self._pubsub is not None:
                    await self._pubsub.unsubscribe(channel)
        except RedisError as error:
            log.warning("request outcomes: could not unsubscribe %s: %r", channel, error)

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except Exception as error:
                # Waiters fall back on their timeouts until redis-py has reconnected.
                log.warning("request outcomes interrupted: %r", error)
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._deliver(message)

    def _deliver(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        if message["type"] == "subscribe" and self._owed.get(channel):
            self._owed[channel].popleft().set()
            if not self._owed[channel]:
                del self._owed[channel]
        elif message["type"] == "message" and (state := self._channels.get(channel)):
            for heard in state.waiters:
                heard.set()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        async with self._commands:
            if self._pubsub is not None:
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
                self._pubsub = None  # waiters cancelled by the shutdown have nothing to unsubscribe


class RedisRequestStatuses:
    """The request-status store shared by every process that talks to the same Redis."""

    def __init__(self, client: Redis, prefix: str = "", ttl_seconds: int = 86_400) -> None:
        self._client, self._prefix, self._ttl_ms = client, prefix, str(ttl_seconds * 1000)
        self._owns_client = False
        self._outcomes = _Outcomes(client)
        self._put = client.register_script(PUT)
        self._unsent: dict[str, RequestStatus] = {}
        self._flushing: asyncio.Task[None] | None = None
        self._forget = client.register_script(FORGET)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "", ttl_seconds: int = 86_400, max_connections: int = 100
    ) -> RedisRequestStatuses:
        # Blocking: redis-py's default pool fails the 101st concurrent command; a burst of
        # waiters or outcomes should queue for a connection instead.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=5, socket_connect_timeout=5
        )
        statuses = cls(Redis.from_pool(pool), prefix=prefix, ttl_seconds=ttl_seconds)
        statuses._owns_client = True
        return statuses

    async def close(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flushing
        await self._outcomes.close()
        if self._owns_client:
            await self._client.aclose()

    def key(self, trace_id: str) -> str:
        """The status's key, and the channel its outcome is published on."""
        return f"{self._prefix}request-status:{trace_id}"

    async def put(self, status: RequestStatus) -> None:
        """Kept on Redis; while Redis is away, kept here and written once it is back (the
        request was accepted: its status must not be lost with a Redis blip)."""
        try:
            await self._write(status)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            log.warning("request status %s kept until Redis is back: %r", status.trace_id, error)
            self._unsent[status.trace_id] = status
            if self._flushing is None or self._flushing.done():
                self._flushing = asyncio.create_task(self._flush(), name="request-statuses-flush")

    async def put_all(self, statuses: Sequence[RequestStatus]) -> None:
        """One round trip for a batch's outcomes (a pipeline of the same script)."""
        try:
            async with asyncio.timeout(5), self._client.pipeline(transaction=False) as pipeline:
                for status in statuses:
                    await self._put(
                        keys=[self.key(status.trace_id)], args=self._args(status), client=pipeline
                    )
                await pipeline.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            for status in statuses:  # each kept until Redis is back
                await self.put(status)

    def _args(self, status: RequestStatus) -> list[str]:
        flags = ["1" if status.decided else "0", "1" if status.ended else "0"]
        return [encode(status), self._ttl_ms, *flags, *DECIDED]

    async def _write(self, status: RequestStatus) -> None:
        async with asyncio.timeout(5):
            await self._put(keys=[self.key(status.trace_id)], args=self._args(status))

    async def _flush(self) -> None:
        while self._unsent:
            trace_id, status = next(iter(self._unsent.items()))
            try:
                await self._write(status)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                await asyncio.sleep(1.0)
                continue
            if self._unsent.get(trace_id) is status:
                del self._unsent[trace_id]

    async def get(self, trace_id: str) -> RequestStatus | None:
        unsent = self._unsent.get(trace_id)
        try:
            async with asyncio.timeout(5):
                value = await self._client.get(self.key(trace_id))
        except (RedisConnectionError, RedisTimeoutError, OSError):
            if unsent is None:
                raise
            return unsent
        return unsent if value is None else decode(value)

    async def wait_decided(self, trace_id: str, within: float) -> RequestStatus | None:
        """The status once ended (decided, or failed), or the latest one after `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within), self._outcomes.heard(self.key(trace_id)) as heard:
                status = await self.get(trace_id)
                if status is not None and status.ended:
                    return status
                await heard.wait()
        return await self.get(trace_id)

    async def forget(self, trace_id: str) -> None:
        """Drop a status not decided yet; a decided one stays (a consumer may have been quicker)."""
        unsent = self._unsent.get(trace_id)
        if unsent is not None and not unsent.decided:
            del self._unsent[trace_id]
        await self._forget(keys=[self.key(trace_id)], args=DECIDED)
