"""One contract for the Lock port (Redisson RLock semantics), run against every implementation."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from adapters.lock.local import LocalLock
from adapters.lock.redis import RedisLock
from application.ports import Lock
from domain.errors import LockTimeout

Locks = Callable[[], Lock]


@pytest.fixture(params=["local", "redis"])
async def make_lock(request: pytest.FixtureRequest) -> AsyncIterator[Locks]:
    if request.param == "local":
        yield LocalLock
        return
    url, made = request.getfixturevalue("redis_url"), []
    prefix = f"test:{uuid.uuid4().hex}:"

    def make() -> Lock:
        made.append(RedisLock.from_url(url, prefix=prefix))
        return made[-1]

    yield make
    for lock in made:
        await lock.close()


async def test_one_holder_at_a_time(make_lock: Locks) -> None:
    lock, inside, most = make_lock(), 0, 0

    async def critical() -> None:
        nonlocal inside, most
        async with lock.hold("store_waiting:1", wait_time=5, lease_time=10):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(critical() for _ in range(50)))
    assert most == 1


async def test_waiting_longer_than_wait_time_raises_lock_timeout(make_lock: Locks) -> None:
    lock = make_lock()
    async with lock.hold("k", wait_time=1, lease_time=10):
        with pytest.raises(LockTimeout):
            async with lock.hold("k", wait_time=0.05, lease_time=10):
                pass


async def test_keys_are_independent(make_lock: Locks) -> None:
    lock = make_lock()
    async with (
        lock.hold("store_waiting:1", wait_time=1, lease_time=10),
        lock.hold("store_waiting:2", wait_time=0.01, lease_time=10),
    ):
        pass


async def test_a_waiter_wakes_when_the_holder_releases(make_lock: Locks) -> None:
    lock, order = make_lock(), []

    async def holder() -> None:
        async with lock.hold("k", wait_time=1, lease_time=10):
            await asyncio.sleep(0.05)
            order.append("released")

    async def waiter() -> None:
        await asyncio.sleep(0.01)
        async with lock.hold("k", wait_time=5, lease_time=10):
            order.append("acquired")

    await asyncio.wait_for(asyncio.gather(holder(), waiter()), timeout=2)
    assert order == ["released", "acquired"]


async def test_an_expired_lease_lets_the_next_in_and_its_unlock_touches_nothing(make_lock: Locks) -> None:
    lock = make_lock()
    async with lock.hold("k", wait_time=1, lease_time=0.05):
        await asyncio.sleep(0.1)
        # The lease is over: another holder may take it, and our unlock must not free theirs.
        async with lock.hold("k", wait_time=0.5, lease_time=10):
            pass
        taken, done = asyncio.Event(), asyncio.Event()

        async def theirs() -> None:
            async with lock.hold("k", wait_time=0.5, lease_time=10):
                taken.set()
                await done.wait()

        other = asyncio.create_task(theirs())
        await taken.wait()
    with pytest.raises(LockTimeout):
        async with lock.hold("k", wait_time=0.05, lease_time=10):
            pass
    done.set()
    await other


async def test_a_lease_of_none_is_kept_while_held(make_lock: Locks) -> None:
    lock = make_lock()
    async with lock.hold("k", wait_time=1, lease_time=None):
        await asyncio.sleep(0.1)
        with pytest.raises(LockTimeout):
            async with lock.hold("k", wait_time=0.05, lease_time=None):
                pass
    async with lock.hold("k", wait_time=0.05, lease_time=None):
        pass


async def test_a_cancelled_holder_releases(make_lock: Locks) -> None:
    lock = make_lock()

    async def hold_forever() -> None:
        async with lock.hold("k", wait_time=1, lease_time=None):
            await asyncio.sleep(60)

    task = asyncio.create_task(hold_forever())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with lock.hold("k", wait_time=0.05, lease_time=None):
        pass


async def _served_in_order_one_at_a_time(lock: Lock, waiters: int = 20) -> None:
    """Waiters that all ask while the lock is held: none gets in before the holder leaves, then
    each in the order it asked, one at a time (each leaves before the next enters)."""
    seen: list[tuple[str, int]] = []
    asked = [asyncio.Event() for _ in range(waiters)]

    async def take(n: int) -> None:
        asked[n].set()
        async with lock.hold("k", wait_time=5, lease_time=10):
            seen.append(("in", n))
            # Later waiters leave sooner: without mutual exclusion they would leave out of order.
            await asyncio.sleep(0.0005 * (waiters - n))
            seen.append(("out", n))

    async with lock.hold("k", wait_time=1, lease_time=10):
        tasks = []
        for n in range(waiters):
            tasks.append(asyncio.create_task(take(n)))
            await asyncio.wait_for(asked[n].wait(), timeout=1)
            await asyncio.sleep(0.002)  # it is in line (asking takes a round trip on Redis)
        entered_while_held = list(seen)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)

    assert entered_while_held == []
    assert seen == [(step, n) for n in range(waiters) for step in ("in", "out")]


async def test_waiters_are_served_in_the_order_they_asked(make_lock: Locks) -> None:
    await _served_in_order_one_at_a_time(make_lock())


class NoLock:
    """What the check above must catch: a lock that excludes nobody."""

    @contextlib.asynccontextmanager
    async def hold(self, key: str, *, wait_time: float, lease_time: float | None) -> AsyncIterator[int]:
        yield 0


class LastComeFirstServed:
    """Mutual exclusion without fairness: a release hands the lock to the newest waiter."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[asyncio.Future[None]] = []

    @contextlib.asynccontextmanager
    async def hold(self, key: str, *, wait_time: float, lease_time: float | None) -> AsyncIterator[int]:
        if self._held:
            turn = asyncio.get_running_loop().create_future()
            self._waiters.append(turn)
            await turn
        self._held = True
        try:
            yield 0
        finally:
            if self._waiters:
                self._waiters.pop().set_result(None)
            else:
                self._held = False


@pytest.mark.parametrize("unfit", [NoLock, LastComeFirstServed])
async def test_the_order_check_fails_for_a_lock_that_is_not_fair_and_exclusive(
    unfit: Callable[[], Lock],
) -> None:
    with pytest.raises(AssertionError):
        await _served_in_order_one_at_a_time(unfit())
