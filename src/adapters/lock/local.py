"""An in-process lock per key with the waitTime/leaseTime semantics of Redisson's RLock."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from domain.errors import LockTimeout

log = logging.getLogger(__name__)


class FencingTokens:
    """Microseconds of the wall clock, never repeating nor going back within the process: they keep
    growing across a restart, unlike a counter that would start again below what a store saw."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock, self._last = clock, 0

    def next(self) -> int:
        self._last = max(self._last + 1, int(self._clock() * 1_000_000))
        return self._last


@dataclass(frozen=True)
class _Lease:
    owner: str
    expires_at: float | None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass
class _Waiter:
    owner: str
    lease_time: float | None
    granted: asyncio.Future[None]


class LocalLock:
    """A fair lock: a release hands the lock to the longest waiter (no spinning, no barging),
    so under a burst the store's requests are served in the order they asked for it.

    A waiter also wakes when the holder's lease ends. A lease of None never expires: the holder
    lives in this process, so the watchdog Redisson needs to outlive a crashed holder has
    nothing to guard against here.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens = FencingTokens()
        self._leases: dict[str, _Lease] = {}
        self._waiters: dict[str, deque[_Waiter]] = {}

    @asynccontextmanager
    async def hold(self, key: str, *, wait_time: float, lease_time: float | None) -> AsyncIterator[int]:
        owner = uuid.uuid4().hex
        await self.acquire(key, owner, wait_time=wait_time, lease_time=lease_time)
        try:
            yield self._tokens.next()
        finally:
            if not self.release(key, owner):
                log.warning("lock %s: lease ended before its holder released it", key)

    async def acquire(self, key: str, owner: str, *, wait_time: float, lease_time: float | None) -> None:
        deadline = self._clock() + wait_time
        while True:
            now = self._clock()
            lease = self._leases.get(key)
            if lease is not None and lease.expired(now):
                self._grant_next(key)
                lease = self._leases.get(key)
            if lease is None:
                self._leases[key] = self._lease(owner, lease_time)
                return
            if now >= deadline:
                raise LockTimeout(f"lock {key} not acquired within {wait_time}s")
            until = deadline if lease.expires_at is None else min(deadline, lease.expires_at)
            if await self._wait_turn(key, owner, lease_time, until - now):
                return

    async def _wait_turn(self, key: str, owner: str, lease_time: float | None, seconds: float) -> bool:
        """Queue up; true once a release handed us the lock, false when `seconds` passed first."""
        waiter = _Waiter(owner, lease_time, asyncio.get_running_loop().create_future())
        queue = self._waiters.setdefault(key, deque())
        queue.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.granted), timeout=max(seconds, 0))
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            # Handed the lock as we were cancelled: pass it on rather than keep it.
            if waiter.granted.done() and not waiter.granted.cancelled():
                self.release(key, owner)
            raise
        finally:
            if waiter in queue:
                queue.remove(waiter)
            if not queue:
                self._waiters.pop(key, None)
            if not waiter.granted.done():
                waiter.granted.cancel()
        return waiter.granted.done() and not waiter.granted.cancelled()

    def release(self, key: str, owner: str) -> bool:
        """Unlock if `owner` still holds the lock; say whether it did."""
        lease = self._leases.get(key)
        if lease is None or lease.owner != owner or lease.expired(self._clock()):
            return False
        self._grant_next(key)
        return True

    def _grant_next(self, key: str) -> None:
        """Hand the lock to the longest waiter still waiting, or free it."""
        queue = self._waiters.get(key, deque())
        while queue:
            waiter = queue.popleft()
            if not waiter.granted.done():
                self._leases[key] = self._lease(waiter.owner, waiter.lease_time)
                waiter.granted.set_result(None)
                return
        self._leases.pop(key, None)

    def _lease(self, owner: str, lease_time: float | None) -> _Lease:
        return _Lease(owner, None if lease_time is None else self._clock() + lease_time)
