"""The Redis lock beyond the port's contract (tests/contracts/test_lock.py): several processes,
holders that die, the watchdog, ownership, cancellation, fencing down to the database's check,
and waiters that sleep instead of polling. On the real Redis, under keys of each test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.lock.redis import HANDOFFS, REANNOUNCE, RESERVED, RedisLock, channel_of, fence_of
from adapters.persistence.engine import make_engine
from adapters.persistence.sql import SqlUnitOfWork
from application.ports import ConcurrencyConflict
from domain.errors import LockTimeout
from domain.store import Store
from harness.redis import PrivateRedis, private_redis

WORKER = Path(__file__).with_name("lockworker.py")
KEY = "store_waiting:1"
Locks = Callable[..., RedisLock]


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture
async def shared(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    """A plain client on the test's Redis; the test's keys are deleted afterwards."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def locks(redis_url: str, prefix: str, shared: Redis) -> AsyncIterator[Locks]:
    """Locks on the test's keys; each one is what a separate process would have."""
    made: list[RedisLock] = []

    def make(**options: Any) -> RedisLock:
        made.append(RedisLock.from_url(redis_url, prefix=prefix, **options))
        return made[-1]

    yield make
    for lock in made:
        await lock.close()


class Worker:
    """A process of tests/adapters/lockworker.py; killed on the way out if still running."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process, self._log = process, log

    async def read(self, within: float = 10) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        if not line:
            await self.process.wait()
            raise AssertionError(f"the worker ended ({self.process.returncode}): {self._log.read_text()}")
        said: dict[str, Any] = json.loads(line)
        return said

    async def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()

    async def kill(self) -> None:
        """SIGKILL: no release, no last renewal."""
        self.process.kill()
        await self.process.wait()


@contextlib.asynccontextmanager
async def workers(tmp_path: Path, *jobs: dict[str, Any]) -> AsyncIterator[list[Worker]]:
    started: list[Worker] = []
    try:
        for n, job in enumerate(jobs):
            log = tmp_path / f"worker-{n}.log"
            with log.open("wb") as errors:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(WORKER),
                    json.dumps(job),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=errors,
                )
            started.append(Worker(process, log))
        yield started
    finally:
        for worker in started:
            if worker.process.returncode is None:
                await worker.kill()


@contextlib.contextmanager
def took() -> Iterator[list[float]]:
    """The seconds the block took, in [0] once it is over."""
    spent: list[float] = []
    start = time.monotonic()
    try:
        yield spent
    finally:
        spent.append(time.monotonic() - start)


# 1 and 6: several processes, one holder at a time, tokens in the order the lock was held


async def test_hundreds_of_tasks_in_four_processes_hold_one_at_a_time_and_all_finish(
    redis_url: str, prefix: str, shared: Redis, tmp_path: Path
) -> None:
    job = {
        "mode": "contend",
        "url": redis_url,
        "prefix": prefix,
        "key": KEY,
        "tasks": 50,
        "hold": 0.002,
        "wait": 25,
        "lease": 10,
    }
    async with workers(tmp_path, *[job] * 4) as processes:
        for worker in processes:
            assert await worker.read() == {"ready": True}
        for worker in processes:
            await worker.go()
        results = [await worker.read(within=35) for worker in processes]

    for result in results:
        assert result == {"done": 50, "overlaps": 0, "timeouts": 0, "errors": []}
    assert int(await shared.get(prefix + "inside") or -1) == 0
    held = [entry.decode().split(":") for entry in await shared.lrange(prefix + "order", 0, -1)]
    assert len(held) == 200
    # In the order the lock was held. A process may hand its acquisition to its next task (lock
    # cohorting: the same token); a token is never seen again once another acquisition took over,
    # and one from another process is always larger. (How long a process may keep handing on while
    # others wait: test_a_process_handing_the_lock_on_lets_a_waiting_process_in.)
    runs = [(pid, int(token), len(list(run))) for (pid, token), run in groupby(held)]
    assert [(a, b) for a, b in pairwise(runs) if a[1] >= b[1]] == [], "a token went back"
    assert len({pid for pid, _, _ in runs}) == 4
    assert not await shared.exists(prefix + KEY)


async def test_tokens_never_go_back_when_redis_loses_the_fence_counter(
    locks: Locks, shared: Redis, prefix: str
) -> None:
    lock, other, tokens = locks(), locks(), []
    for n in range(30):
        async with (lock if n % 2 else other).hold(KEY, wait_time=1, lease_time=10) as token:
            tokens.append(token)
        if n % 10 == 9:
            # Redis restarted without its data (or the key was evicted): the counter starts again.
            assert await shared.delete(fence_of(prefix + KEY)) == 1
    assert all(earlier < later for earlier, later in pairwise(tokens)), tokens


async def test_the_store_refuses_a_write_under_an_older_token(locks: Locks, postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        async with SqlUnitOfWork(engine) as uow:
            store = Store(id=0, name="fenced", waiting_open=True)
            await uow.stores.add(store)
            await uow.commit()
        lock, key, tokens = locks(), f"store_waiting:{store.id}", []
        for _ in range(5):
            async with lock.hold(key, wait_time=1, lease_time=10) as token:
                tokens.append(token)
        oldest, written, paused, _, newest = tokens

        async with SqlUnitOfWork(engine) as uow:
            await uow.stores.fence(store.id, written)
            await uow.stores.fence(store.id, written)  # the same holder writes twice: fine
            await uow.commit()
        async with SqlUnitOfWork(engine) as uow:
            with pytest.raises(ConcurrencyConflict):
                await uow.stores.fence(store.id, oldest)

        # Racing: the newest holder has written but not committed; a holder paused past its lease,
        # whose token is older than the newest (though newer than the one committed), waits for
        # the row, then is refused.
        async def late_write() -> None:
            async with SqlUnitOfWork(engine) as uow:
                await uow.stores.fence(store.id, paused)
                await uow.commit()

        async with SqlUnitOfWork(engine) as uow:
            await uow.stores.fence(store.id, newest)
            late = asyncio.create_task(late_write())
            await asyncio.sleep(0.3)
            assert not late.done(), "the older holder's write did not wait for the newer one's"
            await uow.commit()
        with pytest.raises(ConcurrencyConflict):
            await asyncio.wait_for(late, 5)
    finally:
        await engine.dispose()


# 2 and 3: holders that die


async def test_a_killed_holders_lock_is_free_once_its_lease_ends(
    redis_url: str, prefix: str, locks: Locks, tmp_path: Path
) -> None:
    lease = 1.0
    job = {"mode": "hold", "url": redis_url, "prefix": prefix, "key": KEY, "lease": lease}
    async with workers(tmp_path, job) as [holder]:
        dead = (await holder.read())["token"]
        held_by = time.monotonic()  # it took the lock before it said so
        await holder.kill()
    lock = locks()
    with pytest.raises(LockTimeout):  # the dead process still holds it: nobody released
        async with lock.hold(KEY, wait_time=0.05, lease_time=5):
            pass
    async with lock.hold(KEY, wait_time=5, lease_time=5) as token:
        waited = time.monotonic() - held_by
    assert lease - 0.3 < waited < lease + 0.3
    assert token > dead


async def test_the_watchdog_keeps_a_live_holders_lock_and_a_killed_ones_frees_within_a_lease(
    redis_url: str, prefix: str, locks: Locks, shared: Redis, tmp_path: Path
) -> None:
    watchdog = 0.6
    job = {
        "mode": "hold",
        "url": redis_url,
        "prefix": prefix,
        "key": KEY,
        "lease": None,
        "watchdog": watchdog,
    }
    lock, leases = locks(), []

    async def watch_the_lease() -> None:
        while True:
            leases.append(await shared.pttl(prefix + KEY))
            await asyncio.sleep(0.05)

    async with workers(tmp_path, job) as [holder]:
        dead = (await holder.read())["token"]
        watching = asyncio.create_task(watch_the_lease())
        with took() as spent, pytest.raises(LockTimeout):  # four leases and more: renewed all along
            async with lock.hold(KEY, wait_time=4 * watchdog, lease_time=5):
                pass
        watching.cancel()
        assert spent[0] >= 4 * watchdog
        # Renewed with the watchdog's lease, never let lapse (-2: gone), never without one (-1).
        assert leases and all(0 < left <= watchdog * 1000 for left in leases), leases
        await holder.kill()
        killed = time.monotonic()
    async with lock.hold(KEY, wait_time=5, lease_time=5) as token:
        freed = time.monotonic() - killed
    assert freed < watchdog + 0.2
    assert token > dead


# 4: ownership, and leases that end while held


async def test_only_the_owner_releases_and_an_expired_holder_frees_nothing(
    locks: Locks, shared: Redis, prefix: str
) -> None:
    mine, theirs = locks(), locks()
    key = prefix + KEY
    await mine.acquire(key, "holder", wait_time=1, lease_time=10)
    assert await theirs.release(key, "someone-else") is False
    assert await shared.get(key) == b"holder"
    with pytest.raises(LockTimeout):
        await theirs.acquire(key, "other", wait_time=0.1, lease_time=10)
    assert await mine.release(key, "holder") is True
    assert not await shared.exists(key)

    await mine.acquire(key, "late", wait_time=1, lease_time=0.1)
    await asyncio.sleep(0.2)  # its lease ends while it is paused; another holder takes the lock
    await theirs.acquire(key, "newer", wait_time=1, lease_time=10)
    assert await mine.release(key, "late") is False
    assert await shared.get(key) == b"newer"
    with pytest.raises(LockTimeout):
        await mine.acquire(key, "third", wait_time=0.1, lease_time=10)
    assert await theirs.release(key, "newer") is True


async def test_a_holder_whose_key_redis_lost_frees_nothing_when_it_leaves(
    locks: Locks, shared: Redis, prefix: str
) -> None:
    """Its release skips the owner-checking script while its lease is surely not over; if Redis
    lost the key meanwhile (a restart without its data) and another process took it, the new
    holder's lock is put back at once."""
    lock, other = locks(), locks()
    key = prefix + KEY
    async with lock.hold(KEY, wait_time=1, lease_time=10):
        await shared.delete(key)  # Redis lost it
        await other.acquire(key, "newer", wait_time=1, lease_time=10)
    assert await shared.get(key) == b"newer"
    assert 0 < await shared.pttl(key) <= 30_000  # its lease is not known: the watchdog's
    assert await other.release(key, "newer") is True


async def test_a_waiter_behind_a_holder_that_overran_its_lease_gets_in_when_the_lease_ends(
    locks: Locks,
) -> None:
    """The waiter queued behind the holder in its own process hears no unlock (the late release
    frees nothing): it must still try once the lease is over, not sleep out its wait_time."""
    elsewhere, lock, let_go, moments = locks(), locks(), asyncio.Event(), {}
    lease = 0.2

    async def first() -> None:
        async with elsewhere.hold(KEY, wait_time=1, lease_time=10):
            await let_go.wait()

    async def overrunning() -> None:
        async with lock.hold(KEY, wait_time=2, lease_time=lease):
            moments["overrunning"] = time.monotonic()
            await asyncio.sleep(1.0)  # paused far past its lease

    async def next_in_line() -> None:
        async with lock.hold(KEY, wait_time=2, lease_time=10):
            moments["next"] = time.monotonic()

    holding = asyncio.create_task(first())
    await asyncio.sleep(0.05)
    queued = [asyncio.create_task(overrunning())]
    await asyncio.sleep(0.05)
    queued.append(asyncio.create_task(next_in_line()))
    await asyncio.sleep(0.05)
    let_go.set()
    await asyncio.gather(holding, *queued)
    assert moments["next"] - moments["overrunning"] < lease + 0.3, moments


async def test_a_task_handed_the_lock_keeps_it_no_longer_than_its_own_lease(locks: Locks) -> None:
    lock, elsewhere, let_go, moments = locks(), locks(), asyncio.Event(), {}
    lease = 0.3

    async def first() -> None:
        async with lock.hold(KEY, wait_time=1, lease_time=10):
            await let_go.wait()

    async def stalling() -> None:
        async with lock.hold(KEY, wait_time=2, lease_time=lease):
            moments["stalling"] = time.monotonic()
            await asyncio.sleep(1.5)  # paused past its lease

    holding = asyncio.create_task(first())
    await asyncio.sleep(0.05)
    handed = asyncio.create_task(stalling())
    await asyncio.sleep(0.05)
    let_go.set()
    async with elsewhere.hold(KEY, wait_time=3, lease_time=10):
        moments["elsewhere"] = time.monotonic()
    await asyncio.gather(holding, handed)
    assert moments["elsewhere"] - moments["stalling"] < lease + 0.3, moments


async def test_a_process_handing_the_lock_on_lets_a_waiting_process_in(locks: Locks) -> None:
    busy, other, order, started = locks(), locks(), [], asyncio.Event()

    async def local(n: int) -> None:
        async with busy.hold(KEY, wait_time=10, lease_time=10):
            order.append(n)
            started.set()
            await asyncio.sleep(0.02)  # a registration's transaction, say

    async def elsewhere() -> None:
        async with other.hold(KEY, wait_time=5, lease_time=10):
            order.append("elsewhere")

    queued = [asyncio.create_task(local(n)) for n in range(40)]
    await started.wait()
    await asyncio.sleep(0.005)
    asked = len(order)
    await asyncio.gather(elsewhere(), *queued)
    # The holder then at most HANDOFFS hand-offs in a row, and the waiting process's turn.
    assert order.index("elsewhere") - asked <= HANDOFFS + 1, order


# 5: cancellation


async def test_a_waiter_cancelled_in_line_leaves_nothing_behind(
    locks: Locks, shared: Redis, prefix: str
) -> None:
    holder, lock = locks(), locks()
    let_go, held = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with holder.hold(KEY, wait_time=1, lease_time=10):
            held.set()
            await let_go.wait()

    async def wait_in_line() -> float:
        async with lock.hold(KEY, wait_time=10, lease_time=10):
            return time.monotonic()

    holding = asyncio.create_task(hold())
    await held.wait()
    first = asyncio.create_task(wait_in_line())
    await asyncio.sleep(0.05)
    second = asyncio.create_task(wait_in_line())
    await asyncio.sleep(0.2)
    first.cancel()  # the first of this process's line: the one that tries for the others
    with pytest.raises(asyncio.CancelledError):
        await first
    let_go.set()
    await holding
    released = time.monotonic()
    assert await asyncio.wait_for(second, 2) - released < 0.3
    # Nobody is left in line before a newcomer, in this process or in Redis.
    with took() as spent:
        assert await free_at_once(lock)
    assert spent[0] < 0.1
    assert not await shared.exists(prefix + KEY)


async def free_at_once(lock: RedisLock, key: str = KEY) -> bool:
    """Is the key free for this lock: taken at once? (A lost holder keeps it for its 10 s lease.)"""
    try:
        async with lock.hold(key, wait_time=0.3, lease_time=10):
            return True
    except LockTimeout:
        return False


async def cancelled_as_it_gets_the_lock(locks: Locks, steps: int, *, handed: bool) -> tuple[str, bool]:
    """Cancel a task `steps` loop iterations after the lock became its to take: handed on by the
    task before it in its process (`handed`: no I/O, so each step is the same every run), or taken
    in Redis (the reply's timing varies a little). Fresh locks and key: nothing carries over.
    Says how the task ended, and whether the key was free at once afterwards, here and elsewhere."""
    lock, elsewhere, key = locks(), locks(), f"{KEY}:{'handed' if handed else 'taken'}:{steps}"
    let_go, held = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with lock.hold(key, wait_time=1, lease_time=10):
            held.set()
            await let_go.wait()

    async def cancelled() -> None:
        async with lock.hold(key, wait_time=2, lease_time=10):
            await asyncio.sleep(10)

    holding = asyncio.create_task(first())
    await held.wait()
    if handed:
        waiting = asyncio.create_task(cancelled())
        await asyncio.sleep(0.05)
        let_go.set()
    else:
        let_go.set()
        await holding
        waiting = asyncio.create_task(cancelled())
    for _ in range(steps):
        await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.wait({waiting}, timeout=0.3)
    if not waiting.done():
        ended = "ran on inside the lock"
        waiting.cancel()
    else:
        ended = "cancelled" if waiting.cancelled() else "finished"
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    await holding
    return ended, await free_at_once(elsewhere, key) and await free_at_once(lock, key)


async def test_a_task_cancelled_as_it_gets_the_lock_stays_cancelled(locks: Locks) -> None:
    ended = {
        (how, steps): (await cancelled_as_it_gets_the_lock(locks, steps, handed=how == "handed"))[0]
        for how in ("handed", "taken")
        for steps in range(12 if how == "handed" else 30)
    }
    assert {at: how for at, how in ended.items() if how != "cancelled"} == {}


async def test_a_task_cancelled_as_it_gets_the_lock_gives_it_back(locks: Locks) -> None:
    free = {
        (how, steps): (await cancelled_as_it_gets_the_lock(locks, steps, handed=how == "handed"))[1]
        for how in ("handed", "taken")
        for steps in range(12 if how == "handed" else 30)
    }
    assert [at for at, yes in free.items() if not yes] == []


async def test_a_holder_cancelled_inside_releases_at_once(locks: Locks, shared: Redis, prefix: str) -> None:
    lock, other, held = locks(), locks(), asyncio.Event()

    async def hold_long() -> None:
        async with lock.hold(KEY, wait_time=1, lease_time=10):
            held.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(hold_long())
    await held.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await shared.exists(prefix + KEY)
    async with other.hold(KEY, wait_time=0.1, lease_time=10):
        pass


# 7: no polling


async def test_waiters_sleep_until_told_instead_of_polling() -> None:
    """On a Redis of the test's own, so that every command counted is the lock's."""
    with private_redis() as url:
        prefix = f"test:{uuid.uuid4().hex}:"
        holder = RedisLock.from_url(url, prefix=prefix)
        processes = [RedisLock.from_url(url, prefix=prefix) for _ in range(2)]
        admin = Redis.from_url(url, decode_responses=True)
        try:
            order: list[int] = []

            async def wait(lock: RedisLock, n: int) -> None:
                async with lock.hold(KEY, wait_time=20, lease_time=10):
                    order.append(n)

            async with holder.hold(KEY, wait_time=1, lease_time=10):
                await admin.config_resetstat()
                waiters = [asyncio.create_task(wait(processes[n % 2], n)) for n in range(20)]
                await asyncio.sleep(2)
                stats = await admin.info("commandstats")
                assert not any(waiter.done() for waiter in waiters)
            await asyncio.wait_for(asyncio.gather(*waiters), 10)
        finally:
            await admin.aclose()
            for lock in (holder, *processes):
                await lock.close()
    calls = {
        name.removeprefix("cmdstat_"): int(stat["calls"])
        for name, stat in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))  # the test's own
    }
    assert sum(calls.values()) < 3 * 20, calls
    assert sorted(order) == list(range(20))


async def test_an_acquisition_nobody_contends_costs_four_commands() -> None:
    """SET NX PX GET, the fencing counter's INCR, then GETDEL and the unlock message: counted as
    Redis counts them, on a Redis of the test's own."""
    with private_redis() as url:
        lock = RedisLock.from_url(url, prefix=f"test:{uuid.uuid4().hex}:")
        admin = Redis.from_url(url, decode_responses=True)
        try:
            async with lock.hold(KEY, wait_time=1, lease_time=10):
                pass  # the connection is open, the fencing counter exists
            await admin.config_resetstat()
            for _ in range(10):
                async with lock.hold(KEY, wait_time=1, lease_time=10):
                    pass
            stats = await admin.info("commandstats")
        finally:
            await admin.aclose()
            await lock.close()
    calls = {
        name.removeprefix("cmdstat_"): int(stat["calls"])
        for name, stat in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    }
    assert calls == {"set": 10, "incr": 10, "getdel": 10, "publish": 10}, calls


async def test_a_waiter_that_gives_up_while_the_lease_is_renewed_for_it_does_not_strand_the_lock(
    locks: Locks,
) -> None:
    """The queue's worker retries with a short wait_time; a holder without a lease (30 s, watchdog)
    hands on to it, renewing the lease to the worker's first: if the worker gave up meanwhile, the
    lock must go to whoever is still waiting, or back to Redis, not to a turn that has left."""
    lock = locks()
    for _ in range(20):
        taken, let_go = asyncio.Event(), asyncio.Event()

        async def hold_it(taken: asyncio.Event, let_go: asyncio.Event) -> None:
            async with lock.hold(KEY, wait_time=1, lease_time=None):
                taken.set()
                await let_go.wait()

        holder = asyncio.create_task(hold_it(taken, let_go))
        await taken.wait()

        async def retrying_worker() -> float:
            started = time.monotonic()
            while True:
                try:
                    async with lock.hold(KEY, wait_time=0.002, lease_time=10):
                        return time.monotonic() - started
                except LockTimeout:
                    await asyncio.sleep(0)

        worker = asyncio.create_task(retrying_worker())
        await asyncio.sleep(0.01)
        let_go.set()
        await holder
        assert await asyncio.wait_for(worker, 5) < 2


async def test_a_turn_kept_for_a_process_that_is_gone_holds_the_others_up_by_the_reservation_only(
    locks: Locks, shared: Redis, prefix: str
) -> None:
    """A process said it waits, then died: the cohort keeps the lock for its turn; nobody takes
    it, and the waiters of the cohort's process get in once the reservation ends (1 s), not at
    their wait_time."""
    lock, let_go = locks(), asyncio.Event()

    async def holder() -> None:
        async with lock.hold(KEY, wait_time=5, lease_time=10):
            await let_go.wait()

    async def waiter() -> float:
        started = time.monotonic()
        async with lock.hold(KEY, wait_time=5, lease_time=10):
            return time.monotonic() - started

    first = asyncio.create_task(holder())
    await asyncio.sleep(0.1)
    waiters = [asyncio.create_task(waiter()) for _ in range(HANDOFFS + 1)]
    await asyncio.sleep(0.2)
    await shared.publish(channel_of(prefix + KEY), "waiting:a-process-that-died")
    await asyncio.sleep(0.1)
    let_go.set()
    await first
    waited = await asyncio.gather(*waiters)
    assert max(waited) < RESERVED + 2.5, waited


async def test_a_process_that_began_waiting_before_the_holder_listened_gets_its_turn(locks: Locks) -> None:
    """Its first 'waiting' went unheard; it says so again, and the holder's process yields."""
    here, there = locks(), locks()
    stop = time.monotonic() + 6

    async def busy(first: bool = False) -> None:
        while time.monotonic() < stop:
            async with here.hold(KEY, wait_time=5, lease_time=10):
                await asyncio.sleep(0.2 if first else 0.005)
                first = False

    async def other() -> float:
        started = time.monotonic()
        async with there.hold(KEY, wait_time=5, lease_time=10):
            return time.monotonic() - started

    burst = [asyncio.create_task(busy(first=True))]
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(other())
    await asyncio.sleep(0.05)
    burst += [asyncio.create_task(busy()) for _ in range(3)]
    assert await waiting < REANNOUNCE + 2
    await asyncio.gather(*burst)


# Faults between the commands of one step: the step's real commands run on the real Redis, with
# a pause or a lost answer put in between.


async def test_a_token_taken_after_the_lease_may_have_ended_is_never_used(
    locks: Locks, shared: Redis, prefix: str
) -> None:
    """SET NX then INCR are two commands: a holder paused between them past its lease must not come
    back with a token above the one of the holder that took the lock meanwhile."""
    slow, other = locks(), locks()
    taken = slow._next_token

    async def paused(key: str) -> int:
        await asyncio.sleep(0.3)
        return await taken(key)

    slow._next_token = paused  # type: ignore[method-assign]
    tokens: dict[str, int] = {}

    async def first() -> None:
        with contextlib.suppress(LockTimeout):
            async with slow.hold(KEY, wait_time=1, lease_time=0.1) as token:
                tokens["paused"] = token

    async def second() -> None:
        await asyncio.sleep(0.15)
        async with other.hold(KEY, wait_time=2, lease_time=1) as token:
            tokens["second"] = token
            await asyncio.sleep(0.3)

    await asyncio.gather(first(), second())
    assert "paused" not in tokens or tokens["paused"] < tokens["second"], tokens


async def test_a_renewal_whose_answer_was_lost_still_lets_the_holder_release(
    locks: Locks, shared: Redis, prefix: str
) -> None:
    """A hand-off renews to the next task's lease and renames the owner; if the answer is lost, the
    lock holds either name, and the release must still free it."""
    lock = locks()
    renew = lock._renew

    async def answer_lost(*args: Any, **kwargs: Any) -> Any:
        await renew(*args, **kwargs)
        raise RedisError("the answer was lost")

    lock._renew = answer_lost  # type: ignore[method-assign]

    async def next_in_line() -> float:
        await asyncio.sleep(0.05)
        started = time.monotonic()
        async with lock.hold(KEY, wait_time=3, lease_time=30):
            return time.monotonic() - started

    waiting = asyncio.create_task(next_in_line())
    async with lock.hold(KEY, wait_time=1, lease_time=2):
        await asyncio.sleep(0.2)
    assert await asyncio.wait_for(waiting, 5) < 1
    assert not await shared.exists(prefix + KEY)


async def test_a_waiter_cancelled_while_its_token_fails_leaves_nothing_locked(
    locks: Locks, shared: Redis, prefix: str
) -> None:
    lock = locks()

    async def fails(key: str) -> int:
        await asyncio.sleep(0.1)
        raise RedisError("connection reset")

    lock._next_token = fails  # type: ignore[method-assign]

    async def waiter() -> None:
        async with lock.hold(KEY, wait_time=1, lease_time=None):
            pass

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0.05)  # its SET has taken the lock; the INCR is on its way
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.3)
    assert not await shared.exists(prefix + KEY)


async def test_an_acquisition_whose_answer_was_lost_is_given_back(
    locks: Locks, redis_url: str, prefix: str
) -> None:
    """The script ran, the connection dropped before its answer: the key must not stay locked."""
    dropping = False

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: bool) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                if answers and dropping:
                    break
                writer.write(data)
                await writer.drain()
        writer.close()

    pipes: set[asyncio.Task[None]] = set()

    async def relay(client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        host, port = redis_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        server_in, server_out = await asyncio.open_connection(host, int(port))
        pipes.update(
            {
                asyncio.create_task(pipe(client_in, server_out, answers=False)),
                asyncio.create_task(pipe(server_in, client_out, answers=True)),
            }
        )

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    flaky = RedisLock.from_url(f"redis://127.0.0.1:{port}/0", prefix=prefix)
    try:
        async with flaky.hold(KEY, wait_time=1, lease_time=10):
            pass  # the scripts are loaded
        dropping = True
        with pytest.raises(RedisError):
            async with flaky.hold(KEY, wait_time=1, lease_time=10):
                pass
        dropping = False
        await asyncio.sleep(0.3)
        assert await free_at_once(locks())
    finally:
        with contextlib.suppress(Exception):
            await flaky.close()
        proxy.close()
        for task in pipes:
            task.cancel()


async def test_with_redis_away_an_acquisition_fails_at_once_not_after_its_wait_time(prefix: str) -> None:
    server = PrivateRedis()
    server.start()
    lock = RedisLock.from_url(server.url, prefix=prefix)
    try:
        server.stop()
        started = time.monotonic()
        with pytest.raises(RedisError):
            async with lock.hold(KEY, wait_time=5, lease_time=10):
                pass
        assert time.monotonic() - started < 2.5  # well inside the wait_time
    finally:
        await lock.close()
        server.close()


async def test_a_closed_lock_leaves_no_connection_behind(redis_url: str, prefix: str, shared: Redis) -> None:
    lock = RedisLock.from_url(redis_url, prefix=prefix)
    async with lock.hold(KEY, wait_time=1, lease_time=10):
        pass
    channel = channel_of(prefix + KEY)
    assert await shared.pubsub_numsub(channel) == [(channel.encode(), 1)]
    await lock.close()
    await asyncio.sleep(0.05)
    assert await shared.pubsub_numsub(channel) == [(channel.encode(), 0)]


async def test_long_holds_do_not_keep_another_process_out_for_all_their_hand_offs(locks: Locks) -> None:
    """A process whose tasks each hold 40 ms hands on for a quarter of a second at most while
    another waits, not sixteen holds (0.64 s) in a row: a waiter with a 0.5 s wait_time gets in."""
    busy, other = locks(), locks()
    stop = time.monotonic() + 2

    async def holder() -> None:
        while time.monotonic() < stop:
            async with busy.hold(KEY, wait_time=5, lease_time=10):
                await asyncio.sleep(0.04)

    holders = [asyncio.create_task(holder()) for _ in range(30)]
    await asyncio.sleep(0.02)  # the first holder is in; its process has 15 more to hand on to
    async with other.hold(KEY, wait_time=0.5, lease_time=10):
        pass
    await asyncio.gather(*holders)
