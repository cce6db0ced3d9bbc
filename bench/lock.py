"""Lock benchmark: our Redis lock against its peers, on one key and on 64, under the same Redis.

For every hold (0, 1 and 5 ms by default) and every lock, in the same run against the Redis at --url:
  serial        one task in one process acquiring and releasing back to back on one key, with the hold
                inside: the no-contention ceiling of that lock (its cycle is hold + hand-off).
  contended/K   4 processes x 16 tasks (spawned, each process with one client / one RedisLock shared by
                its tasks), all started together after a warm-up (a barrier, then a common start time);
                each task loops acquire -> hold (asyncio.sleep, none at 0 ms) -> release for --seconds,
                on one key (K=1) or on a key drawn at random from 64 for every acquisition (K=64).
The locks: ours (`adapters.lock.redis.RedisLock`, wait_time 5 s, lease 10 s), redis-py's
`redis.asyncio.lock.Lock` (its default sleep=0.1 and sleep=0.001; blocking_timeout 5 s), python-redis-lock
(synchronous: 16 threads per process instead of tasks; timeout 5 s) and pottery's AIORedlock (one master;
timeout 5 s). Every lock's lease is 10 s. The peers are benchmark-only dependencies:
`.venv/bin/pip install -e '.[bench]'`.

Measured per scenario: acquisitions/s (acquired inside the window), their share of the same lock's serial
rate, Jain's fairness index over the 64 tasks' acquisition counts ((sum x)^2 / (n sum x^2)), starved tasks
(no acquisition in the window, a timeout, or a wait longer than wait_time), wait p50/p99 (from the call
to acquire until it returns, over every wait that began inside the window: a wait in progress when the
window closes is followed to its end while the others keep the load up; a timed-out wait counts with its
length), Redis commands per acquisition (the sum of INFO commandstats `calls` over the window, so the
commands a Lua script runs count as well as its EVALSHA, less the rate other clients of this shared Redis
made in 0.2 s just before and after, with none of ours running: a scenario where they made over 5 % of the
count runs once more, one still over 2 % is marked †) and mutual exclusion: a per-key in-critical-section
counter in shared memory must never exceed 1; for ours a key's fencing tokens, in acquisition order, must
never fall (hand-offs inside a process keep a token, so equal ones follow each other). The issue's targets
for ours are checked and written beside the tables. Not measured here: "0 LOCK_TIMEOUT for V2 at 200
concurrent clients" (needs the HTTP service). The workers import ours from a copy of src/ taken when the
run starts (its commit and hash go in the header), so edits to the working tree during a run do not mix in.

Keys live under `bench:<random>:` (the peers add their own `lock:`, `lock-signal:`, `redlock:` in front)
and are deleted at the end. Results go to bench/RESULTS.md and the README between the lock markers
(not with --quick, a short smoke run).

    .venv/bin/python bench/lock.py [--seconds 2.5] [--holds 0,1,5] [--keys 1,64] [--locks ours,redis-py,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.metadata
import itertools
import logging
import math
import multiprocessing as mp
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import redis
import redis.asyncio
from redis.asyncio.lock import Lock as RedisPyLock

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
LOCK_SOURCE = Path("adapters") / "lock" / "redis.py"
# The workers import the lock from a copy of src/ taken when the run starts (see `_snapshot`), so that
# every scenario of a run measures the same code even while someone edits the working tree.
SNAPSHOT = "WAITLINE_LOCK_BENCH_SRC"
sys.path.insert(0, os.environ.get(SNAPSHOT, str(ROOT / "src")))

from sections import replace_section  # noqa: E402

LOCKS = ["ours", "redis-py", "redis-py/sleep=1ms", "python-redis-lock", "pottery"]
PEERS = {"redis-py": "redis", "python-redis-lock": "python-redis-lock", "pottery": "pottery"}
GOAL_SHARE, GOAL_JAIN, GOAL_P99, GOAL_COMMANDS = 0.90, 0.99, 1.2, 5.0


class Spec(NamedTuple):
    """One scenario, as every worker process gets it."""

    lock: str
    url: str
    prefix: str
    keys: int
    tasks: int  # per process
    hold: float
    seconds: float
    wait_time: float
    lease: float


class Shared(NamedTuple):
    """What the processes of one scenario share: a barrier after the warm-up, the start time the
    parent sets once everyone is ready, the count of tasks done with their measured waits, and the
    per-key in-critical-section counters."""

    ready: Any
    start: Any
    finished: Any
    inside: Any
    overlaps: Any


class Timeout(Exception):
    """A lock's wait_time passed (LockTimeout for ours, False from the peers' acquire)."""


# --- the locks, behind one shape: acquire(key) -> handle (raises Timeout), release(handle) ---------------


class Ours:
    def __init__(self, spec: Spec) -> None:
        from adapters.lock.redis import RedisLock  # from the run's snapshot of src/
        from domain.errors import LockTimeout

        self.spec, self.lock_timeout = spec, LockTimeout
        self.lock = RedisLock.from_url(spec.url, prefix=spec.prefix)

    async def acquire(self, key: str) -> tuple[contextlib.AsyncExitStack, int]:
        stack = contextlib.AsyncExitStack()
        try:
            hold = self.lock.hold(key, wait_time=self.spec.wait_time, lease_time=self.spec.lease)
            token = await stack.enter_async_context(hold)
        except self.lock_timeout as error:
            raise Timeout from error
        return stack, token

    async def release(self, handle: tuple[contextlib.AsyncExitStack, int]) -> None:
        await handle[0].aclose()

    async def close(self) -> None:
        await self.lock.close()


class RedisPy:
    def __init__(self, spec: Spec, sleep: float) -> None:
        self.spec, self.sleep = spec, sleep
        self.client = redis.asyncio.Redis.from_url(spec.url)

    async def acquire(self, key: str) -> RedisPyLock:
        lock = RedisPyLock(
            self.client,
            self.spec.prefix + key,
            timeout=self.spec.lease,
            sleep=self.sleep,
            blocking_timeout=self.spec.wait_time,
            thread_local=False,
        )
        if not await lock.acquire():
            raise Timeout
        return lock

    async def release(self, lock: RedisPyLock) -> None:
        await lock.release()

    async def close(self) -> None:
        await self.client.aclose()


class Pottery:
    def __init__(self, spec: Spec) -> None:
        from pottery import AIORedlock  # a peer: imported only where it runs

        self.spec, self.redlock = spec, AIORedlock
        self.client = redis.asyncio.Redis.from_url(spec.url)

    async def acquire(self, key: str) -> Any:
        lock = self.redlock(
            key=self.spec.prefix + key, masters={self.client}, auto_release_time=self.spec.lease
        )
        if not await lock.acquire(timeout=self.spec.wait_time):
            raise Timeout
        return lock

    async def release(self, lock: Any) -> None:
        await lock.release()

    async def close(self) -> None:
        await self.client.aclose()


class PythonRedisLock:
    """Synchronous: its tasks are threads."""

    def __init__(self, spec: Spec) -> None:
        import redis_lock  # a peer: imported only where it runs

        self.spec, self.module = spec, redis_lock
        self.client = redis.Redis.from_url(spec.url)

    def acquire(self, key: str) -> Any:
        lock = self.module.Lock(self.client, self.spec.prefix + key, expire=int(self.spec.lease))
        if not lock.acquire(timeout=int(self.spec.wait_time)):
            raise Timeout
        return lock

    def release(self, lock: Any) -> None:
        lock.release()

    def close(self) -> None:
        self.client.close()


def _async_lock(spec: Spec) -> Ours | RedisPy | Pottery:
    if spec.lock == "ours":
        return Ours(spec)
    if spec.lock == "redis-py":
        return RedisPy(spec, sleep=0.1)
    if spec.lock == "redis-py/sleep=1ms":
        return RedisPy(spec, sleep=0.001)
    if spec.lock == "pottery":
        return Pottery(spec)
    raise ValueError(spec.lock)


# --- one task (or thread) ------------------------------------------------------------------------------


@dataclass
class Tally:
    """One task's record: acquisitions inside the window, every wait begun inside it, timeouts, and
    (ours) the fencing tokens with their acquisition times."""

    process: int
    acquired: int = 0
    timeouts: int = 0
    waits: list[float] = field(default_factory=list)
    fences: list[tuple[float, int, int]] = field(default_factory=list)


class Task:
    """The loop's bookkeeping, the same for a coroutine and a thread."""

    def __init__(self, spec: Spec, shared: Shared, tally: Tally, seed: int) -> None:
        self.spec, self.shared, self.tally = spec, shared, tally
        self.random = random.Random(seed)
        self.all_tasks = 0
        self.deadline = self.hard_stop = 0.0
        self.measuring = True
        self.waiting = False

    def start(self, all_tasks: int) -> None:
        start = self.shared.start.value
        self.all_tasks = all_tasks
        self.deadline = start + self.spec.seconds
        self.hard_stop = self.deadline + 2 * self.spec.wait_time + 5

    def next_key(self) -> tuple[int, str] | None:
        """The key of the next acquisition, or None once everyone is done."""
        now = time.monotonic()
        if self.measuring and now >= self.deadline:
            self.measuring = False
            with self.shared.finished.get_lock():
                self.shared.finished.value += 1
        if not self.measuring and (self.shared.finished.value >= self.all_tasks or now > self.hard_stop):
            return None
        index = self.random.randrange(self.spec.keys)
        return index, f"k{index}"

    def acquired(self, started: float, index: int, token: int | None) -> None:
        got = time.monotonic()
        if self.measuring:
            self.tally.waits.append(got - started)
            if got <= self.deadline:
                self.tally.acquired += 1
        if token is not None:
            self.tally.fences.append((got, index, token))
        inside, overlaps = self.shared.inside, self.shared.overlaps
        with inside.get_lock():
            inside[index] += 1
            if inside[index] > 1:
                overlaps.value += 1

    def releasing(self, index: int) -> None:
        with self.shared.inside.get_lock():
            self.shared.inside[index] -= 1

    def timed_out(self, started: float) -> None:
        if self.measuring:
            self.tally.timeouts += 1
            self.tally.waits.append(time.monotonic() - started)


async def _run_async_task(lock: Ours | RedisPy | Pottery, task: Task) -> None:
    while (next_key := task.next_key()) is not None:
        index, key = next_key
        started = time.monotonic()
        task.waiting = True
        try:
            handle = await lock.acquire(key)
        except Timeout:
            task.timed_out(started)
            continue
        except asyncio.CancelledError:
            return  # a wait begun after the window, once every measured one has ended
        finally:
            task.waiting = False
        task.acquired(started, index, handle[1] if isinstance(lock, Ours) else None)
        if task.spec.hold:
            await asyncio.sleep(task.spec.hold)
        task.releasing(index)
        await lock.release(handle)


def _run_thread_task(lock: PythonRedisLock, task: Task) -> None:
    while (next_key := task.next_key()) is not None:
        index, key = next_key
        started = time.monotonic()
        try:
            handle = lock.acquire(key)
        except Timeout:
            task.timed_out(started)
            continue
        task.acquired(started, index, None)
        if task.spec.hold:
            time.sleep(task.spec.hold)
        task.releasing(index)
        lock.release(handle)


# --- one worker process --------------------------------------------------------------------------------


def _tasks(spec: Spec, shared: Shared, process: int) -> list[Task]:
    return [Task(spec, shared, Tally(process), seed=process * 1000 + number) for number in range(spec.tasks)]


def _wait_for_start(shared: Shared) -> None:
    shared.ready.wait(timeout=120)
    while shared.start.value == 0.0:
        time.sleep(0.001)
    time.sleep(max(0.0, shared.start.value - time.monotonic()))


async def _async_worker(spec: Spec, shared: Shared, process: int, processes: int) -> list[Tally]:
    lock = _async_lock(spec)
    tasks = _tasks(spec, shared, process)
    try:
        for _ in range(2):  # warm-up, on keys of its own: connections, scripts
            await asyncio.gather(*(_warm_async(lock, f"warm{process}.{i}") for i in range(spec.tasks)))
        await asyncio.to_thread(_wait_for_start, shared)
        for task in tasks:
            task.start(spec.tasks * processes)
        runners = [asyncio.create_task(_run_async_task(lock, task)) for task in tasks]
        await _end_late_waits(runners, tasks)
        await asyncio.gather(*runners)
    finally:
        await lock.close()
    return [task.tally for task in tasks]


async def _end_late_waits(runners: list[asyncio.Task[None]], tasks: list[Task]) -> None:
    """Once every task of every process has ended its measured waits, the tasks that began another
    wait only to keep the load up are cancelled rather than left to wait their turn."""
    task, cancelled = tasks[0], set[int]()
    while not all(runner.done() for runner in runners):
        if task.shared.finished.value >= task.all_tasks or time.monotonic() > task.hard_stop:
            for i, (runner, waiting) in enumerate(zip(runners, tasks, strict=True)):
                if waiting.waiting and i not in cancelled:
                    cancelled.add(i)  # once: a second cancel would interrupt the lock's clean-up
                    runner.cancel()
        await asyncio.sleep(0.01)


async def _warm_async(lock: Ours | RedisPy | Pottery, key: str) -> None:
    handle = await lock.acquire(key)
    await lock.release(handle)


def _thread_worker(spec: Spec, shared: Shared, process: int, processes: int) -> list[Tally]:
    lock = PythonRedisLock(spec)
    tasks = _tasks(spec, shared, process)
    try:
        for i in range(spec.tasks):  # warm-up, on keys of its own
            lock.release(lock.acquire(f"warm{process}.{i}"))
        _wait_for_start(shared)
        for task in tasks:
            task.start(spec.tasks * processes)
        threads = [threading.Thread(target=_run_thread_task, args=(lock, task)) for task in tasks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        lock.close()
    return [task.tally for task in tasks]


def _worker(spec: Spec, shared: Shared, process: int, processes: int, results: Any) -> None:
    logging.basicConfig(level=logging.ERROR)
    try:
        if spec.lock == "python-redis-lock":
            tallies = _thread_worker(spec, shared, process, processes)
        else:
            tallies = asyncio.run(_async_worker(spec, shared, process, processes))
        results.put((process, tallies, None))
    except BaseException as error:
        results.put((process, [], repr(error)))
        raise


# --- the parent: scenarios, counts, the report -------------------------------------------------------


class Commands:
    """INFO commandstats of the Redis: what a window cost, and what other clients did meanwhile."""

    IDLE = 0.2  # seconds counted before and after each scenario, our workers not running

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.version = str(self.client.info("server")["redis_version"])

    def snapshot(self) -> Counter[str]:
        stats = self.client.info("commandstats")
        return Counter({name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()})

    @staticmethod
    def diff(before: Counter[str], after: Counter[str]) -> Counter[str]:
        counted = after.copy()
        counted.subtract(before)
        counted.pop("info", None)  # the snapshots themselves
        return +counted

    def idle_rate(self) -> float:
        """Commands/s other clients make while we make none."""
        before = self.snapshot()
        time.sleep(self.IDLE)
        return sum(self.diff(before, self.snapshot()).values()) / self.IDLE

    def cleanup(self, prefix: str) -> int:
        keys = list(self.client.scan_iter(match=f"*{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            self.client.delete(*keys[start : start + 500])
        return len(keys)


@dataclass
class Row:
    lock: str
    keys: int
    hold: float
    tasks: int
    seconds: float
    acquisitions: int
    per_task: list[int]
    per_process: list[int]
    waits: list[float]
    starved: int
    timeouts: int
    commands: Counter[str]
    background: float  # commands/s from other clients, measured around the scenario
    overlaps: int
    fence_ok: bool | None  # ours: a key's tokens never fall, in acquisition order
    token_holders: int  # ours: most holds that shared one token (lock cohorting hands a token on)
    errors: list[str]

    @property
    def rate(self) -> float:
        return self.acquisitions / self.seconds

    @property
    def jain(self) -> float:
        squares = sum(x * x for x in self.per_task)
        return sum(self.per_task) ** 2 / (len(self.per_task) * squares) if squares else 0.0

    def wait(self, q: float) -> float:
        ordered = sorted(self.waits)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan

    @property
    def others(self) -> float:
        """Other clients' estimated commands in the window."""
        return self.background * self.seconds

    @property
    def disturbed(self) -> bool:
        """Other clients' traffic was more than 2 % of what the window counted."""
        return self.others > 0.02 * max(1, sum(self.commands.values()))

    @property
    def commands_per_acquisition(self) -> float:
        total = max(0.0, sum(self.commands.values()) - self.others)
        return total / self.acquisitions if self.acquisitions else math.nan


def run_scenario(spec: Spec, processes: int, commands: Commands) -> Row:
    ctx = mp.get_context("spawn")
    shared = Shared(
        ready=ctx.Barrier(processes + 1),
        start=ctx.Value("d", 0.0, lock=False),
        finished=ctx.Value("i", 0),
        inside=ctx.Array("i", spec.keys),
        overlaps=ctx.Value("i", 0, lock=False),
    )
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(spec, shared, i, processes, results), daemon=True)
        for i in range(processes)
    ]
    background = [commands.idle_rate()]
    for worker in workers:
        worker.start()
    errors: list[str] = []
    try:
        shared.ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        errors.append("a worker did not reach the start")
    before = commands.snapshot()
    start = time.monotonic() + 0.05
    shared.start.value = start
    time.sleep(max(0.0, start + spec.seconds - time.monotonic()))
    counted = commands.diff(before, commands.snapshot())
    tallies: list[Tally] = []
    for _ in workers:
        try:
            _process, got, error = results.get(timeout=spec.seconds + 4 * spec.wait_time + 60)
        except Exception as error:  # a worker died without a word
            errors.append(repr(error))
            break
        tallies += got
        if error:
            errors.append(error)
    for worker in workers:
        worker.join(timeout=10)
        if worker.is_alive():
            worker.kill()
    background.append(commands.idle_rate())
    return _row(spec, processes, tallies, counted, statistics.mean(background), shared.overlaps.value, errors)


def _row(
    spec: Spec,
    processes: int,
    tallies: list[Tally],
    counted: Counter[str],
    background: float,
    overlaps: int,
    errors: list[str],
) -> Row:
    starved = sum(
        1 for t in tallies if t.acquired == 0 or t.timeouts or any(w > spec.wait_time for w in t.waits)
    )
    fence_ok, holders = None, Counter[tuple[int, int]]()
    if spec.lock == "ours":
        fence_ok, last = True, dict[int, int]()
        for _got, key, token in sorted(fence for t in tallies for fence in t.fences):
            fence_ok = fence_ok and token >= last.get(key, token)
            last[key] = token
            holders[key, token] += 1
    return Row(
        lock=spec.lock,
        keys=spec.keys,
        hold=spec.hold,
        tasks=processes * spec.tasks,
        seconds=spec.seconds,
        acquisitions=sum(t.acquired for t in tallies),
        per_task=[t.acquired for t in tallies],
        per_process=[sum(t.acquired for t in tallies if t.process == p) for p in range(processes)],
        waits=[w for t in tallies for w in t.waits],
        starved=starved,
        timeouts=sum(t.timeouts for t in tallies),
        commands=counted,
        background=background,
        overlaps=overlaps,
        fence_ok=fence_ok,
        token_holders=max(holders.values(), default=0),
        errors=errors,
    )


def _available(lock: str) -> str | None:
    """None if the lock can run here, else why not."""
    module = {"python-redis-lock": "redis_lock", "pottery": "pottery"}.get(lock)
    if module is None:
        return None
    try:
        __import__(module)
    except Exception as error:
        return f"not installed or not importable ({error!r}): `.venv/bin/pip install -e '.[bench]'`"
    return None


def _measure(spec: Spec, processes: int, commands: Commands, label: str) -> Row:
    """A scenario; once more if other clients' traffic was over 5 % of its command count."""
    row = run_scenario(spec, processes, commands)
    _progress(row, label)
    if row.others > 0.05 * max(1, sum(row.commands.values())):
        print(f"  other clients made ~{row.background:,.0f} commands/s meanwhile: once more")
        row = run_scenario(spec, processes, commands)
        _progress(row, label)
    return row


def run(args: argparse.Namespace) -> tuple[list[Row], list[Row], dict[str, str], Commands]:
    commands = Commands(args.url)
    prefix = f"bench:{secrets.token_hex(4)}:"
    skipped = {lock: why for lock in args.locks if (why := _available(lock)) is not None}
    locks = [lock for lock in args.locks if lock not in skipped]
    serial_rows: list[Row] = []
    rows: list[Row] = []
    scenarios = itertools.count()
    print(f"Redis {commands.version}, keys under {prefix}")
    try:
        for hold_ms in args.holds:
            hold = hold_ms / 1000
            for lock in locks:

                def spec(keys: int, tasks: int, seconds: float, lock: str = lock, hold: float = hold) -> Spec:
                    # Keys of its own for every scenario: nothing one left behind can hold up the next.
                    own = f"{prefix}{next(scenarios)}:"
                    return Spec(lock, args.url, own, keys, tasks, hold, seconds, args.wait_time, args.lease)

                try:
                    if lock != "redis-py/sleep=1ms":  # without contention it never sleeps: redis-py's ceiling
                        serial_rows.append(_measure(spec(1, 1, args.serial_seconds), 1, commands, "serial"))
                    for keys in args.keys:
                        scenario = spec(keys, args.tasks, args.seconds)
                        rows.append(_measure(scenario, args.processes, commands, f"{args.tasks} tasks x"))
                except Exception as error:  # a peer that does not work here is reported, not dropped
                    skipped[lock] = f"failed at hold {hold_ms:g} ms: {error!r}"
                    print(f"{lock}: {skipped[lock]}")
    finally:
        print(f"deleted {commands.cleanup(prefix)} keys under {prefix}")
    return serial_rows, rows, skipped, commands


def _progress(row: Row, label: str) -> None:
    fences = "" if row.fence_ok is None else f", tokens {'never fall' if row.fence_ok else 'FELL'}"
    print(
        f"{row.lock:18} {label:12} keys {row.keys:2} hold {row.hold * 1000:g} ms: {row.rate:8,.0f}/s, "
        f"Jain {row.jain:.3f}, starved {row.starved}, p50 {_ms(row.wait(0.5))}, p99 {_ms(row.wait(0.99))}, "
        f"{row.commands_per_acquisition:.1f} cmds/acq, others {row.background:,.0f}/s, "
        f"overlaps {row.overlaps}{fences}{', errors ' + '; '.join(row.errors) if row.errors else ''}"
    )


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:.2f} ms" if seconds < 0.01 else f"{seconds * 1000:,.0f} ms"


def _serial(serial_rows: list[Row], lock: str, hold: float) -> Row | None:
    lock = "redis-py" if lock == "redis-py/sleep=1ms" else lock
    return next((r for r in serial_rows if r.lock == lock and r.hold == hold), None)


def _bound(serial: Row | None, tasks: int) -> float:
    """The p99 target: 1.2 x tasks x (hold + hand-off), the serial loop's cycle being hold + hand-off."""
    return GOAL_P99 * tasks / serial.rate if serial and serial.rate else math.nan


def _scenario_table(rows: list[Row], serial_rows: list[Row]) -> list[str]:
    lines = [
        "| keys | hold | lock | acq/s | vs serial | Jain | starved | timeouts | per task | per process | "
        "wait p50 | wait p99 | p99 target | cmds/acq | overlaps |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r.keys, r.hold)):
        serial = _serial(serial_rows, row.lock, row.hold)
        share = f"{row.rate / serial.rate:.0%}" if serial and serial.rate else "-"
        name = f"**{row.lock}**" if row.lock == "ours" else row.lock
        total = max(1, row.acquisitions)
        processes = "/".join(f"{n / total:.0%}".removesuffix("%") for n in row.per_process) + " %"
        marks = ("†" if row.disturbed else "") + (" (errors)" if row.errors else "")
        lines.append(
            f"| {row.keys} | {row.hold * 1000:g} ms | {name} | {row.rate:,.0f} | {share} | {row.jain:.3f} | "
            f"{row.starved} | {row.timeouts} | {min(row.per_task, default=0)}-{max(row.per_task, default=0)} | "
            f"{processes} | {_ms(row.wait(0.5))} | {_ms(row.wait(0.99))} | {_ms(_bound(serial, row.tasks))} | "
            f"{row.commands_per_acquisition:.1f}{marks} | {row.overlaps} |"
        )
    return lines


def _serial_table(serial_rows: list[Row], holds: list[float]) -> list[str]:
    lines = [
        "| lock | " + " | ".join(f"hold {h:g} ms: acq/s (cycle), cmds/acq" for h in holds) + " |",
        "|---|" + "---|" * len(holds),
    ]
    for lock in dict.fromkeys(r.lock for r in serial_rows):
        cells = []
        for hold in holds:
            row = _serial(serial_rows, lock, hold / 1000)
            cells.append(
                f"{row.rate:,.0f} ({_ms(1 / row.rate)}), {row.commands_per_acquisition:.1f}"
                + ("†" if row.disturbed else "")
                if row and row.rate
                else "-"
            )
        lines.append(f"| {lock} | " + " | ".join(cells) + " |")
    return lines


def _targets(rows: list[Row], serial_rows: list[Row]) -> tuple[list[str], bool]:
    lines = [
        "| ours: keys, hold | ≥ 90 % of serial | Jain ≥ 0.99 | no starved task | p99 ≤ 1.2 × tasks × cycle "
        "| ≤ 5 cmds/acq | exclusive |",
        "|---|---|---|---|---|---|---|",
    ]
    all_met = True
    for row in sorted((r for r in rows if r.lock == "ours"), key=lambda r: (r.keys, r.hold)):
        serial = _serial(serial_rows, "ours", row.hold)
        share = row.rate / serial.rate if serial and serial.rate else math.nan
        bound = _bound(serial, row.tasks)
        checks = [
            (share >= GOAL_SHARE, f"{share:.0%}"),
            (row.jain >= GOAL_JAIN, f"{row.jain:.3f}"),
            (row.starved == 0, f"{row.starved} starved, {row.timeouts} timeouts"),
            (row.wait(0.99) <= bound, f"{_ms(row.wait(0.99))} vs {_ms(bound)}"),
            (row.commands_per_acquisition <= GOAL_COMMANDS, f"{row.commands_per_acquisition:.1f}"),
            (
                row.overlaps == 0 and row.fence_ok is not False,
                f"{row.overlaps} overlaps, tokens {'never fall' if row.fence_ok is not False else 'fell'}",
            ),
        ]
        all_met &= all(ok for ok, _ in checks)
        cells = " | ".join(f"{'met' if ok else '**missed**'} ({text})" for ok, text in checks)
        lines.append(f"| {row.keys}, {row.hold * 1000:g} ms | {cells} |")
    return lines, all_met


def _breakdown(rows: list[Row], serial_rows: list[Row]) -> list[str]:
    """Ours: which commands an acquisition costs (per acquisition, from INFO commandstats)."""
    ours = [r for r in serial_rows if r.lock == "ours"] + sorted(
        (r for r in rows if r.lock == "ours"), key=lambda r: (r.keys, r.hold)
    )
    if not ours:
        return []
    names = ["set", "incr", "getdel", "publish", "pttl", "evalsha", "get", "del", "pexpire", "subscribe"]
    lines = [
        "| ours: scenario | " + " | ".join(names) + " | other | total | holds per token (max) |",
        "|---|" + "---|" * (len(names) + 3),
    ]
    for row in ours:
        n = row.acquisitions or 1
        other = sum(count for name, count in row.commands.items() if name not in names)
        label = "serial" if row.tasks == 1 else f"{row.tasks} tasks"
        lines.append(
            f"| {label}, {row.keys} key{'s' if row.keys > 1 else ''}, {row.hold * 1000:g} ms | "
            + " | ".join(f"{row.commands[name] / n:.2f}" for name in names)
            + f" | {other / n:.2f} | {sum(row.commands.values()) / n:.2f}{'†' if row.disturbed else ''} "
            f"| {row.token_holders} |"
        )
    return lines


def _versions() -> str:
    found = []
    for label, package in PEERS.items():
        try:
            found.append(f"{label} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{label} not installed")
    return ", ".join(found)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else "missing"


def _snapshot(into: Path) -> str:
    """Copy src/ for the workers (SNAPSHOT) and say which lock that is: the commit, and whether
    the working tree's copy of the lock differs from it."""
    shutil.copytree(ROOT / "src", into, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    os.environ[SNAPSHOT] = str(into)
    sys.path.insert(0, str(into))

    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    path = (Path("src") / LOCK_SOURCE).as_posix()
    changed = bool(git("status", "--porcelain", "--", path))
    return (
        f"`{path}` at {git('rev-parse', '--short', 'HEAD') or '?'}"
        f"{' with uncommitted changes' if changed else ''} (sha256 {_digest(into / LOCK_SOURCE)})"
    )


def report(
    args: argparse.Namespace,
    serial_rows: list[Row],
    rows: list[Row],
    skipped: dict[str, str],
    commands: Commands,
    source: str,
) -> tuple[str, str]:
    """The RESULTS.md section and the README's summary."""
    holds = ",".join(f"{h:g}" for h in args.holds)
    keys = ",".join(str(k) for k in args.keys)
    header = (
        f"`bench/lock.py --seconds {args.seconds:g} --holds {holds} --keys {keys}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"Redis {commands.version} on the same machine (loopback, shared with other clients), {_versions()}; "
        f"ours: {source}. {args.processes} processes × {args.tasks} tasks (python-redis-lock: threads), "
        f"{args.seconds:g} s per scenario, the serial ceiling {args.serial_seconds:g} s; wait_time "
        f"{args.wait_time:g} s, lease {args.lease:g} s."
    )
    scenario = _scenario_table(rows, serial_rows)
    targets, all_met = _targets(rows, serial_rows)
    disturbed = sum(r.disturbed for r in rows + serial_rows)
    notes = [
        "keys 64: every acquisition draws one of 64 keys at random. vs serial: against the same lock's "
        "one-task loop at the same hold (redis-py/sleep=1ms against redis-py's: without contention it never "
        "sleeps). per task: fewest-most acquisitions of a task; per process: each process's share. starved: "
        "tasks with no acquisition in the window, a timeout or a wait past wait_time. p99 target: "
        "1.2 × tasks × the same lock's serial cycle (hold + hand-off). cmds/acq: INFO commandstats calls "
        "over the window (script-run commands included) less other clients' rate measured just before and "
        "after, per acquisition"
        + (
            f"; † other clients' traffic was over 2 % of it ({disturbed} runs; over 5 % is run once more)"
            if disturbed
            else ""
        )
        + ". overlaps: times a key's in-critical-section counter (shared memory) went above 1.",
    ]
    fences = [r for r in rows if r.fence_ok is not None]
    if fences:
        notes.append(
            "Ours' fencing tokens, per key in acquisition order: "
            + ("never fall" if all(r.fence_ok for r in fences) else "**fell**")
            + f"; up to {max(r.token_holders for r in fences)} consecutive holds share one token "
            "(a token is per acquisition in Redis: hand-offs inside a process keep it)."
        )
    for lock, why in skipped.items():
        notes.append(f"{lock}: not measured, {why}.")
    notes.append(
        "0 LOCK_TIMEOUT for V2 at 200 concurrent clients on one store: measured over HTTP by "
        "`bench/hot.py --profiles redis` (the `redis` rows of the hot-store section: non-2xx)."
    )
    verdict = f"Targets for ours: **{'all met' if all_met else 'not all met'}**."
    body = [
        "## Lock: ours against redis-py, python-redis-lock and pottery on one Redis",
        "",
        header,
        "",
        *scenario,
        "",
        *(line for note in notes for line in (note, "")),
        verdict,
        "",
        *targets,
        "",
        "Serial ceiling (one task, one process, one key):",
        "",
        *_serial_table(serial_rows, args.holds),
        "",
        "Where ours' commands go, per acquisition (INFO commandstats, other clients included):",
        "",
        *_breakdown(rows, serial_rows),
    ]
    summary = [header, "", *scenario, "", notes[0], "", verdict, "", *targets]
    return "\n".join(body), "\n".join(summary)


def _list(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [kind(item) for item in text.split(",") if item]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seconds", type=float, default=2.5, help="window of each contended scenario")
    parser.add_argument("--serial-seconds", type=float, default=1.0, help="window of each serial run")
    parser.add_argument("--holds", type=_list(float), default=[0.0, 1.0, 5.0], help="ms, comma-separated")
    parser.add_argument("--keys", type=_list(int), default=[1, 64], help="comma-separated")
    parser.add_argument(
        "--locks", type=_list(str), default=LOCKS, help=f"comma-separated, of {','.join(LOCKS)}"
    )
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=16, help="per process")
    parser.add_argument("--wait-time", type=float, default=5.0)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 0.3 s windows, holds 0 and 5 ms; nothing written"
    )
    args = parser.parse_args()
    if unknown := set(args.locks) - set(LOCKS):
        parser.error(f"unknown locks: {', '.join(sorted(unknown))}")
    if max(args.keys) > 64 or min(args.keys) < 1:
        parser.error("--keys: between 1 and 64")
    if args.quick:
        args.seconds, args.serial_seconds, args.holds = 0.3, 0.2, [0.0, 5.0]
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="waitline-lock-bench-") as copy:
        source = _snapshot(Path(copy) / "src")
        serial_rows, rows, skipped, commands = run(args)
        if _digest(ROOT / "src" / LOCK_SOURCE) != _digest(Path(copy) / "src" / LOCK_SOURCE):
            source += (
                "; the working tree's copy changed during the run (measured: the copy taken at its start)"
            )
    section, summary = report(args, serial_rows, rows, skipped, commands, source)
    print(section)
    if not args.quick:
        replace_section(RESULTS, "lock", section)
        replace_section(ROOT / "README.md", "lock", summary)


if __name__ == "__main__":
    main()
