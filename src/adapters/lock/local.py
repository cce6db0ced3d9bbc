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


@dataclass(frozen=True)
class _Lease:
    owner: str
    expires_at: float | None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class LocalLock:
    """Waiters sleep until a release wakes them (no spinning), or until the holder's lease ends.

    A lease of None never expires: the holder lives in this process, so the watchdog that
    Redisson needs to outlive a crashed holder has nothing to guard against here.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}

    @asynccontextmanager
    async def hold(self, key: str, *, wait_time: float, lease_time: float | None) -> AsyncIterator[None]:
        owner = uuid.uuid4().hex
        await self.acquire(key, owner, wait_time=wait_time, lease_time=lease_time)
        try:
            yield
        finally:
            if not self.release(key, owner):
                log.warning("lock %s: lease ended before its holder released it", key)

    async def acquire(self, key: str, owner: str, *, wait_time: float, lease_time: float | None) -> None:
        deadline = self._clock() + wait_time
        while True:
            now = self._clock()
            lease = self._leases.get(key)
            if lease is None or lease.expired(now):
                self._leases[key] = _Lease(owner, None if lease_time is None else now + lease_time)
                return
            if now >= deadline:
                raise LockTimeout(f"lock {key} not acquired within {wait_time}s")
            until = deadline if lease.expires_at is None else min(deadline, lease.expires_at)
            await self._sleep(key, until - now)

    async def _sleep(self, key: str, seconds: float) -> None:
        wake_up: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, deque())
        waiters.append(wake_up)
        try:
            await asyncio.wait_for(wake_up, timeout=max(seconds, 0))
        except TimeoutError:
            pass
        finally:
            if wake_up in waiters:
                waiters.remove(wake_up)
            if not waiters:
                self._waiters.pop(key, None)

    def release(self, key: str, owner: str) -> bool:
        """Unlock if `owner` still holds the lock; say whether it did."""
        lease = self._leases.get(key)
        if lease is None or lease.owner != owner or lease.expired(self._clock()):
            return False
        del self._leases[key]
        self._wake_next(key)
        return True

    def _wake_next(self, key: str) -> None:
        for wake_up in self._waiters.get(key, ()):
            if not wake_up.done():
                wake_up.set_result(None)
                return

    def held(self, key: str) -> bool:
        lease = self._leases.get(key)
        return lease is not None and not lease.expired(self._clock())
