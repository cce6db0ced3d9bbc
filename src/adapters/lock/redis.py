"""A lock per key on Redis with the semantics of Redisson's RLock, for asyncio.

- Acquire and release are single Lua scripts on a hash `{owner: count}` whose expiry is the
  lease, as Redisson keeps it; a failed attempt answers the lease's remaining milliseconds.
- No spinning: a waiter sleeps until the holder's unlock message (one pub/sub connection per
  process for all keys and all waiters) or until the lease it was told of ends, whichever first.
  Within a process the waiters of a key queue up and only the first tries; an unlock wakes it.
  (Across processes each process's first waiter competes: FIFO across processes is not yet kept.)
- `lease_time=None`: a watchdog renews a 30 s lease every 10 s while the holder lives; if the
  process dies, the lock frees itself 30 s later at most.
- Release checks ownership: a holder whose lease ended frees nothing (and is told so).
- Cancelled while waiting: nothing is left behind (an acquisition that raced the cancel is
  released). Cancelled while holding: the block's exit releases.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from domain.errors import LockTimeout

log = logging.getLogger(__name__)

WATCHDOG_LEASE = 30.0
UNLOCKED = "0"

# KEYS[1] the lock, KEYS[2] its fencing counter; ARGV[1] lease in ms, ARGV[2] owner.
# {token} when acquired, else the holder's remaining lease in ms. The counter follows the clock
# when it starts (also after Redis lost it), so tokens never fall below ones handed out before.
ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[1]) then
  local token = redis.call('incr', KEYS[2])
  if token == 1 then
    local now = redis.call('time')
    token = now[1] * 1000000 + now[2]
    redis.call('set', KEYS[2], token)
  end
  return {token}
end
return redis.call('pttl', KEYS[1])
"""

# KEYS[1] the lock, KEYS[2] its channel; ARGV[1] owner, ARGV[2] message.
# 1 when unlocked, 0 when the owner no longer held it (its lease ended): nothing is freed then.
RELEASE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('del', KEYS[1])
redis.call('publish', KEYS[2], ARGV[2])
return 1
"""

# KEYS[1] the lock; ARGV[1] lease in ms, ARGV[2] owner. 1 when renewed, 0 when no longer held.
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[2] then
  redis.call('pexpire', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


def channel_of(key: str) -> str:
    return f"{key}:unlocked"


def fence_of(key: str) -> str:
    return f"{key}:fence"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class _Turn:
    """One waiter's place in its key's queue of this process."""

    def __init__(self, queue: deque[_Turn]) -> None:
        self._queue = queue
        self.woken = asyncio.Event()
        self.acquired = False

    def first(self) -> bool:
        return self._queue[0] is self


class _Waiters:
    """This process's waiters for one key, in arrival order: only the first tries, so a release
    is handed on in the order the lock was asked for, and an unlock message wakes the first."""

    def __init__(self) -> None:
        self.queue: deque[_Turn] = deque()

    def wake_first(self) -> None:
        if self.queue:
            self.queue[0].woken.set()


class _UnlockMessages:
    """One pub/sub connection for the process. A key's channel is subscribed when one of its
    waiters first has to wait, and dropped once nobody has waited on it for `IDLE_CHANNEL` seconds
    (not at once: a hot key would subscribe and unsubscribe on every burst)."""

    IDLE_CHANNEL = 60.0

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiters: dict[str, _Waiters] = {}
        self._subscribed: dict[str, asyncio.Event] = {}
        self._last_wait: dict[str, float] = {}
        self._commands = asyncio.Lock()

    @asynccontextmanager
    async def waiting(self, key: str) -> AsyncIterator[_Turn]:
        """A place in the key's queue of this process's waiters, taken at once (no await before)."""
        channel = channel_of(key)
        waiters = self._waiters.setdefault(channel, _Waiters())
        turn = _Turn(waiters.queue)
        waiters.queue.append(turn)
        try:
            yield turn
        finally:
            was_first = turn.first()
            waiters.queue.remove(turn)
            if was_first and not turn.acquired:
                waiters.wake_first()  # gave up its turn: the next one tries now
            if not waiters.queue and self._waiters.get(channel) is waiters:
                del self._waiters[channel]

    async def listen(self, key: str) -> bool:
        """Make sure the key's unlock messages reach us; true if that took a new subscription
        (an unlock just before it would have been missed: the caller tries once more)."""
        channel = channel_of(key)
        self._last_wait[channel] = time.monotonic()
        confirmed = self._subscribed.get(channel)
        if confirmed is not None:
            await confirmed.wait()
            return False
        confirmed = self._subscribed[channel] = asyncio.Event()
        async with self._commands:
            if self._pubsub is None:
                self._pubsub = self._client.pubsub()
            await self._pubsub.subscribe(channel)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(self._pubsub), name="redis-lock-unlocks")
        await confirmed.wait()
        return True

    async def _read(self, pubsub: PubSub) -> None:
        swept = time.monotonic()
        while True:
            try:
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Redis went away: waiters fall back on their lease timers until it is back.
                log.warning("lock unlock messages interrupted: %r", error)
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._deliver(message)
            if time.monotonic() - swept > self.IDLE_CHANNEL / 2:
                swept = time.monotonic()
                await self._sweep(pubsub)

    def _deliver(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        if message["type"] == "subscribe" and channel in self._subscribed:
            self._subscribed[channel].set()
        elif message["type"] == "message" and channel in self._waiters:
            self._waiters[channel].wake_first()

    async def _sweep(self, pubsub: PubSub) -> None:
        now = time.monotonic()
        idle = [
            channel
            for channel, last in self._last_wait.items()
            if now - last > self.IDLE_CHANNEL and channel not in self._waiters
        ]
        if not idle:
            return
        async with self._commands:
            await pubsub.unsubscribe(*idle)
        for channel in idle:
            self._subscribed.pop(channel, None)
            self._last_wait.pop(channel, None)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]


class RedisLock:
    """The store's lock shared by every process that talks to the same Redis."""

    def __init__(self, client: Redis, *, watchdog_lease: float = WATCHDOG_LEASE, prefix: str = "") -> None:
        self._client, self._prefix = client, prefix
        self._process, self._holds = uuid.uuid4().hex, itertools.count()
        self._undoing: set[asyncio.Future[bool]] = set()
        self._watchdog_lease = watchdog_lease
        self._unlocks = _UnlockMessages(client)
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(RENEW)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisLock:
        return cls(Redis.from_url(url), **options)

    async def close(self) -> None:
        await self._unlocks.close()
        await self._client.aclose()

    async def ping(self) -> None:
        """Raise unless Redis answers."""
        await self._client.ping()

    def owner(self) -> str:
        """A holder: this process and one `hold`. (Not the task, as Redisson's thread: the port's
        locks are not re-entrant, and the embedded one is not either.)"""
        return f"{self._process}:{next(self._holds)}"

    @asynccontextmanager
    async def hold(self, key: str, *, wait_time: float, lease_time: float | None) -> AsyncIterator[int]:
        key, owner = self._prefix + key, self.owner()
        lease = self._watchdog_lease if lease_time is None else lease_time
        token = await self.acquire(key, owner, wait_time=wait_time, lease_time=lease)
        watchdog = asyncio.create_task(self._watch(key, owner)) if lease_time is None else None
        try:
            yield token
        finally:
            if watchdog is not None:
                watchdog.cancel()
            released = await asyncio.shield(self.release(key, owner))
            if not released:
                log.warning("lock %s: lease ended before its holder released it", key)

    async def acquire(self, key: str, owner: str, *, wait_time: float, lease_time: float) -> int:
        """The fencing token of this acquisition, once acquired."""
        deadline = time.monotonic() + wait_time
        async with self._unlocks.waiting(key) as turn:
            while True:
                left = deadline - time.monotonic()
                timeout = left
                if turn.first():
                    token, remaining = await self._attempt(key, owner, lease_time)
                    if token is not None:
                        turn.acquired = True
                        return token
                    # Woken by the unlock message, or when the holder's lease ends without one.
                    timeout = min(left, max(remaining, 1) / 1000)
                # Every waiter listens before it sleeps: the one behind a holder of this process
                # must hear that holder's unlock, as the first in line by then.
                if await self._unlocks.listen(key):
                    continue
                if left <= 0:
                    raise LockTimeout(f"lock {key} not acquired within {wait_time}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(turn.woken.wait(), timeout)
                turn.woken.clear()

    async def _attempt(self, key: str, owner: str, lease_time: float) -> tuple[int | None, int]:
        """(token, 0) when acquired, else (None, the holder's remaining lease in ms); an acquisition
        that completes after its waiter was cancelled is given straight back."""
        keys, args = [key, fence_of(key)], [str(_ms(lease_time)), owner]
        attempt = asyncio.ensure_future(self._acquire(keys=keys, args=args))
        try:
            answer = await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(lambda done: self._undo(done, key, owner))
            raise
        if isinstance(answer, list):
            return int(answer[0]), 0
        return None, int(answer)

    def _undo(self, attempt: asyncio.Future[Any], key: str, owner: str) -> None:
        if not attempt.cancelled() and attempt.exception() is None and isinstance(attempt.result(), list):
            undo = asyncio.ensure_future(self.release(key, owner))
            self._undoing.add(undo)
            undo.add_done_callback(self._undoing.discard)

    async def release(self, key: str, owner: str) -> bool:
        """Unlock if `owner` holds the lock; say whether it did (a lease that ended frees nothing)."""
        return bool(await self._release(keys=[key, channel_of(key)], args=[owner, UNLOCKED]))

    async def _watch(self, key: str, owner: str) -> None:
        """Keep a lock taken without a lease alive while its holder lives."""
        while True:
            await asyncio.sleep(self._watchdog_lease / 3)
            try:
                if not await self._renew(keys=[key], args=[_ms(self._watchdog_lease), owner]):
                    return
            except Exception as error:
                log.warning("lock %s: the watchdog could not renew (%r); trying again", key, error)
