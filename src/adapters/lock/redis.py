"""A lock per key on Redis with the semantics of Redisson's RLock, for asyncio, shared by processes.

- An attempt is SET NX PX with GET (a failed one answers the holder), then, once acquired, the
  key's fencing counter's INCR; a release, while over a second and half the lease are left, is
  GETDEL and the unlock message in one round trip; after that, the owner-checking script. Four
  Redis commands per uncontended acquisition where Redisson's script pair costs six to nine; what
  GETDEL gives up is in `_unlock`. Each acquisition gets a fencing token.
- No spinning: a waiter sleeps until an unlock message (one pub/sub connection per process for
  all keys and all waiters; every unlock sends one) or until the holder's lease ends: the lease
  its owner carries in the lock's value, or as Redis tells (PTTL) when that is not known.
- Within a process the waiters of a key queue up in arrival order and only the first talks to
  Redis. A holder leaving hands the lock straight to the next task of its process (lock
  cohorting: no Redis command, but a lease renewal when the lease left is not about the next
  holder's).
- Processes take turns in the order they started waiting: a failed attempt tells every process
  on the key's channel that this one waits. While another process waits, a cohort hands on at
  most `handoffs` times in a row, then unlocks *for the longest-waiting process*: the key is kept
  as "turn:<process>" for `RESERVED` seconds, which only that process's attempt can take, and the
  others stay out of the race until it unlocks (or the reservation ends, if it has gone). A
  process that still has waiters then gets back in line behind the others.
- `lease_time=None`: a watchdog renews a 30 s lease every 10 s while the holder lives; if the
  process dies, the lock frees itself 30 s later at most.
- Release checks ownership: a holder whose lease ended frees nothing (and is told so), and
  hands nothing on.
- Cancelled while waiting: nothing is left behind (an acquisition or a hand-off that raced the
  cancel is passed on). Cancelled while holding: the block's exit releases.
- Not Redisson's: no re-entry (the port's locks are not re-entrant), so the lock is a plain
  value, not a hash of owners; fairness is FIFO within a process and turns in waiting order
  among processes (a process that joins late may not know who waited before it: then the next
  unlock is a race, and the losers say again that they wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from adapters.lock.wire import Script, Subscriber, Wire
from domain.errors import LockTimeout

log = logging.getLogger(__name__)

WATCHDOG_LEASE = 30.0
# While another process waits, a cohort hands the lock on at most this many times in a row (a
# round of a 16-task process), and for at most `HANDING_ON` seconds from its acquisition in Redis.
HANDOFFS = 16
HANDING_ON = 0.25
# A task handed the lock gets at least this share of the lease it asked for, else it is renewed.
KEPT_LEASE = 0.9
UNLOCKED, WAITING, TURN, GONE, RENEWED = "unlocked", "waiting", "turn", "gone", "renewed"
# How long a process that just gave the lock up for others stays out of the race for it.
ABSTAIN = 0.005
# How long the lock is kept for the process whose turn it is: if that process has gone, the
# others wait this long at most.
RESERVED = 1.0
# A release skips the owner-checking script while more than this is left of its lease (and more
# than half the lease): GETDEL then runs before the lease ends unless the release stalls longer.
SURE_LEASE = 1.0
# How often the first waiter of a process tries again (and so says again that it waits).
REANNOUNCE = 1.0
# How long a first attempt on a key waits for its unlock channel's subscription.
FIRST_LISTEN = 0.1

# Fencing tokens count from the clock in microseconds (about 1.8e15 in 2026): a counter below this
# floor was lost by Redis (a restart without its data, an eviction) and starts again from the clock,
# so tokens never fall below earlier ones.
CLOCK_FLOOR = 10**15

# KEYS[1] the fencing counter. The next token, not below the clock.
RESTART_FENCE = """
local now = redis.call('time')
local clock = now[1] * 1000000 + now[2]
local token = redis.call('incr', KEYS[1])
if token < clock then
  redis.call('set', KEYS[1], clock)
  token = clock
end
return token
"""

# KEYS[1] the lock; ARGV[1] lease in ms, ARGV[2] owner, ARGV[3] "turn:<process>". Takes the lock
# kept for this process: 1, or 0 when it is no longer kept for it.
TAKE_TURN = """
if redis.call('get', KEYS[1]) ~= ARGV[3] then
  return 0
end
redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[1])
return 1
"""

# KEYS[1] the lock, KEYS[2] its channel; ARGV[1] owner, ARGV[2] message, ARGV[3] "turn:<process>"
# to keep the lock for the process whose turn it is (else empty), ARGV[4] for how long, in ms.
# 1 when unlocked, 0 when the owner no longer held it (its lease ended): nothing is freed then.
RELEASE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] ~= '' then
  redis.call('set', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('del', KEYS[1])
end
redis.call('publish', KEYS[2], ARGV[2])
return 1
"""

# KEYS[1] the lock, KEYS[2] its channel; ARGV[1] lease in ms, ARGV[2] owner, ARGV[3] the owner
# under its new lease (empty: unchanged), ARGV[4] said when the lease got shorter (else empty).
# 1 when renewed, 0 when no longer held.
RENEW = """
if redis.call('get', KEYS[1]) ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then
  redis.call('pexpire', KEYS[1], ARGV[1])
else
  redis.call('set', KEYS[1], ARGV[3], 'PX', ARGV[1])
end
if ARGV[4] ~= '' then
  redis.call('publish', KEYS[2], ARGV[4])
end
return 1
"""


def channel_of(key: str) -> str:
    return f"{key}:unlocked"


def fence_of(key: str) -> str:
    return f"{key}:fence"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _lease_of(owner: str) -> float | None:
    """The lease, in seconds, that an owner of `RedisLock.owner` carries."""
    lease = owner.rpartition(":")[2]
    return int(lease) / 1000 if owner.count(":") == 2 and lease.isdigit() else None


def _with_lease(owner: str, lease: float) -> str:
    """The owner carrying another lease (an owner that carries none stays as it is)."""
    if _lease_of(owner) is None:
        return owner
    return f"{owner.rpartition(':')[0]}:{_ms(lease)}"


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


@dataclass
class _Cohort:
    """This process's acquisition of a key in Redis, handed among its own tasks."""

    owner: str
    token: int
    expires: float  # monotonic; counted from before the command that set the lease
    lease: float  # the last one set
    # The owner before a renewal that renamed it, until Redis confirms: the lock holds either.
    retired: str = ""
    handoffs: int = 0
    contended: bool = False  # another process waits: hand on at most `handoffs` times
    since: float = field(default_factory=time.monotonic)  # acquired in Redis

    def may_hand_on(self, handoffs: int) -> bool:
        """While another process waits, at most `handoffs` times and for `HANDING_ON` seconds (so
        long holds do not keep it out for `handoffs` of them); as long as needed when none does."""
        if not self.contended:
            return True
        return self.handoffs < handoffs and time.monotonic() - self.since < HANDING_ON


@dataclass
class _Turn:
    """One task's place in its key's queue in this process."""

    lease: float
    solo: bool = False
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    granted: _Cohort | None = None
    holding: bool = False


@dataclass
class _Key:
    """A key as this process sees it: its queue of waiters, and its cohort while one holds it."""

    queue: deque[_Turn] = field(default_factory=deque)
    cohort: _Cohort | None = None

    abstain_until: float = 0.0
    # The holder this process last said it waits for, and when: said once per holder.
    announced: str = ""
    announced_at: float = 0.0
    free_by: float = 0.0  # when the holder's lease ends, as its owner carried it or Redis told
    # Other processes heard waiting for the key, longest first: whose turn it is next.
    others: dict[str, None] = field(default_factory=dict)

    def wake_first(self) -> None:
        if self.queue:
            self.queue[0].woken.set()


class _UnlockMessages:
    """One pub/sub connection for the process. A key's channel is subscribed before this process
    first tries for the key, and dropped once nobody has tried or waited on it for `IDLE_CHANNEL`
    seconds (not at once: a hot key would subscribe and unsubscribe on every burst)."""

    IDLE_CHANNEL = 60.0

    def __init__(self, url: str, on_unlock: Callable[[str, str], None]) -> None:
        self._subscriber = Subscriber(url, on_unlock, self._confirmed, self._lost)
        self._subscribed: dict[str, asyncio.Event] = {}
        self._last_wait: dict[str, float] = {}
        self._swept = time.monotonic()

    async def listen(self, channel: str, within: float) -> bool:
        """Make sure the channel's messages reach us (waiting `within` seconds at most for Redis to
        confirm); true if that took a new subscription (an unlock just before it would have been
        missed: the caller tries once more)."""
        now = self._last_wait[channel] = time.monotonic()
        if now - self._swept > self.IDLE_CHANNEL / 2:
            self._sweep(now)
        confirmed = self._subscribed.get(channel)
        if confirmed is not None and confirmed.is_set():
            return False
        fresh = confirmed is None
        if confirmed is None:
            confirmed = self._subscribed[channel] = asyncio.Event()
            self._subscriber.subscribe(channel)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(within, 0)):
                await confirmed.wait()
        return fresh

    def _confirmed(self, channel: str) -> None:
        if channel in self._subscribed:
            self._subscribed[channel].set()

    def _lost(self) -> None:
        # Unlocks were missed meanwhile: the next `listen` of each channel is fresh again (its
        # caller tries once more), and waits for the subscription the reconnect renews.
        self._subscribed.clear()

    def _sweep(self, now: float) -> None:
        self._swept = now
        idle = [channel for channel, last in self._last_wait.items() if now - last > self.IDLE_CHANNEL]
        self._subscriber.unsubscribe(*idle)
        for channel in idle:
            self._subscribed.pop(channel, None)
            self._last_wait.pop(channel, None)

    async def close(self) -> None:
        await self._subscriber.close()


class RedisLock:
    """The stores' lock, shared by every process that talks to the same Redis."""

    def __init__(
        self,
        url: str,
        *,
        watchdog_lease: float = WATCHDOG_LEASE,
        prefix: str = "",
        handoffs: int = HANDOFFS,
    ) -> None:
        self._wire, self._prefix = Wire(url), prefix
        self._watchdog_lease, self._handoffs = watchdog_lease, handoffs
        self._process, self._acquisitions = uuid.uuid4().hex, itertools.count()
        self._waiting, self._turn = f"{WAITING}:{self._process}", f"{TURN}:{self._process}"
        self._keys: dict[str, _Key] = {}
        self._channels: dict[str, str] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._unlocks = _UnlockMessages(url, self._heard)
        self._restart_fence = Script(self._wire, RESTART_FENCE)
        self._take_turn = Script(self._wire, TAKE_TURN)
        self._release = Script(self._wire, RELEASE)
        self._renew = Script(self._wire, RENEW)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisLock:
        return cls(url, **options)

    async def close(self) -> None:
        """Finish handing back what cancelled waiters were given, then close the connections."""
        if self._background:
            await asyncio.wait(self._background, timeout=5)
        await self._unlocks.close()
        await self._wire.close()

    async def ping(self) -> None:
        """Raise unless Redis answers."""
        await self._wire.execute("PING")

    def owner(self, lease: float) -> str:
        """An owner in Redis: this process, one acquisition (the port's locks are not re-entrant,
        so Redisson's thread id has no part here) and its lease, which tells a waiter when to try
        again without asking Redis."""
        return f"{self._process}:{next(self._acquisitions)}:{_ms(lease)}"

    @asynccontextmanager
    async def hold(self, key: str, *, wait_time: float, lease_time: float | None) -> AsyncIterator[int]:
        key = self._prefix + key
        lease = self._watchdog_lease if lease_time is None else lease_time
        cohort = await self._take(key, wait_time, lease)
        watchdog = asyncio.create_task(self._watch(key, cohort)) if lease_time is None else None
        try:
            yield cohort.token
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if not await asyncio.shield(self._leave(key, cohort)):
                log.warning("lock %s: lease ended before its holder released it", key)

    async def _take(self, key: str, wait_time: float, lease: float, owner: str | None = None) -> _Cohort:
        """Wait for the key in this process's queue; the first in line talks to Redis, the others
        are handed the lock by the task before them (never a `solo` one, which has its own owner)."""
        deadline = time.monotonic() + wait_time
        state = self._keys.setdefault(key, _Key())
        turn = _Turn(lease, solo=owner is not None)
        state.queue.append(turn)
        try:
            while True:
                if turn.granted is not None:
                    turn.holding = True
                    return turn.granted
                now = time.monotonic()
                left = timeout = deadline - now
                if state.cohort is not None and state.cohort.expires > now:
                    # Held in this process: handed on when its holder leaves, or free in Redis
                    # once its lease ends without that.
                    timeout = min(left, state.cohort.expires - now)
                elif state.queue[0] is turn and now < state.abstain_until:
                    # This process just let the lock go for another's sake: stay out of the race
                    # until someone else's unlock, or until nobody took it.
                    timeout = min(left, state.abstain_until - now)
                elif state.queue[0] is turn:
                    # Listening before trying: a process that fails against this one's lock, and
                    # says that it waits, is heard (else it would wait a `REANNOUNCE` for its turn).
                    # Not for long: with Redis away, the attempt is what says so.
                    await self._unlocks.listen(self._channel(key), min(left, FIRST_LISTEN))
                    cohort = await self._attempt(key, lease, owner or self.owner(lease))
                    if cohort is not None:
                        turn.holding = True
                        if not turn.solo:
                            cohort.contended = bool(state.others)
                            state.cohort = cohort
                        return cohort
                    # Woken by an unlock message (every unlock sends one), or when the holder's
                    # lease ends without one; and once a second, to say again that this process
                    # waits (a holder that was not listening yet may have missed it, and a message
                    # may be lost).
                    timeout = min(left, REANNOUNCE, max(state.free_by - time.monotonic(), 0.001))
                # Every waiter listens before it sleeps: the one behind a holder of another
                # process must hear its unlock, as the first in line by then.
                if await self._unlocks.listen(self._channel(key), left):
                    continue
                if left <= 0:
                    raise LockTimeout(f"lock {key} not acquired within {wait_time}s")
                # Not wait_for: on Python 3.11 it can swallow a cancel that comes with the wake-up.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await turn.woken.wait()
                turn.woken.clear()
        finally:
            # Nothing awaited here: a cancel must not come between taking the lock and handing
            # it to the caller.
            self._left_queue(key, state, turn)

    def _left_queue(self, key: str, state: _Key, turn: _Turn) -> None:
        first = state.queue[0] is turn
        state.queue.remove(turn)
        if not turn.holding and turn.granted is not None:
            self._in_background(self._leave(key, turn.granted))  # handed it as we gave up: pass it on
        elif first:
            # Gave up its turn: the next one tries now. Or took the lock: the next one sleeps
            # until its lease ends at most, in case its holder never leaves.
            state.wake_first()
        if not state.queue and state.cohort is None and self._keys.get(key) is state:
            del self._keys[key]
            if not turn.holding:
                # Gave up waiting: no process should keep its turn for us.
                self._in_background(
                    self._wire.execute("PUBLISH", self._channel(key), f"{GONE}:{self._process}")
                )

    async def _leave(self, key: str, cohort: _Cohort) -> bool:
        """Hand the lock to the next task of this process, or unlock it in Redis; false when its
        lease had ended (then nothing is handed on nor freed)."""
        state = self._keys.get(key)
        while state and state.queue and cohort.may_hand_on(self._handoffs):
            after = state.queue[0]
            if after.solo or not await self._kept_quietly(key, cohort, after.lease):
                break
            if state.queue and state.queue[0] is after:  # still waiting after the renewal
                cohort.handoffs += 1
                after.granted = cohort
                after.woken.set()
                return True
        now = time.monotonic()
        turn = ""
        if state is not None and state.cohort is cohort:
            state.cohort = None
            if state.queue:
                state.abstain_until = now + ABSTAIN
            # Kept for the longest waiting process when it would otherwise race others: this
            # process's own waiters, or other processes also waiting.
            if cohort.contended and state.others and (state.queue or len(state.others) > 1):
                turn = next(iter(state.others))
        try:
            released = await self._unlock(key, cohort, turn=turn, still_waiting=bool(state and state.queue))
        except (RedisError, OSError) as error:
            # Leaving must not fail what the block did: the lease frees the key in Redis.
            log.warning("lock %s: could not unlock (%r); it frees itself when its lease ends", key, error)
            released = False
        if state is not None and not released:
            state.wake_first()  # no unlock message will come: the next in line tries now
        if state is not None and not state.queue and state.cohort is None and self._keys.get(key) is state:
            del self._keys[key]
        return released

    async def _kept_quietly(self, key: str, cohort: _Cohort, lease: float) -> bool:
        """`_kept`, with Redis away taken as no: leaving must not fail what the block did."""
        try:
            return await self._kept(key, cohort, lease)
        except (RedisError, OSError) as error:
            log.warning("lock %s: could not renew for a hand-off (%r)", key, error)
            return False

    async def _kept(self, key: str, cohort: _Cohort, lease: float) -> bool:
        """Is the cohort's lease still ours, set to about the next holder's lease (renewed when
        less than 90 % of it is left, or more than all of it)?"""
        now = time.monotonic()
        if cohort.expires <= now:
            return False
        if KEPT_LEASE * lease <= cohort.expires - now <= lease:
            return True
        # The lease the owner carries changes with it; waiters of other processes that were told
        # the longer one hear that it got shorter.
        owner = _with_lease(cohort.owner, lease)
        shorter = f"{RENEWED}:{self._process}" if lease < cohort.expires - now else ""
        args = [_ms(lease), cohort.owner, "" if owner == cohort.owner else owner, shorter]
        if owner != cohort.owner:
            # Until Redis answers (an answer can be lost), the lock's value may be either name.
            cohort.retired, cohort.owner = cohort.owner, owner
        if not await self._renew(keys=[key, self._channel(key)], args=args):
            return False
        cohort.retired, cohort.expires, cohort.lease = "", now + lease, lease
        return True

    async def acquire(self, key: str, owner: str, *, wait_time: float, lease_time: float) -> int:
        """One acquisition in Redis for `owner`, its fencing token: for tools and tests. It waits in
        line like `hold`, but is never handed on; give it back with `release`."""
        cohort = await self._take(key, wait_time, lease_time, owner)
        return cohort.token

    async def _attempt(self, key: str, lease: float, owner: str) -> _Cohort | None:
        """The acquisition, or None while another holds the key. An acquisition that completes
        after its waiter was cancelled is given straight back."""
        started = time.monotonic()
        # The SET goes out now; the task that awaits it starts a turn of the loop later.
        taking = self._wire.send("SET", key, owner, "NX", "PX", _ms(lease), "GET")
        attempt = asyncio.ensure_future(self._try(key, lease, owner, taking))
        try:
            token = await asyncio.shield(attempt)
        except asyncio.CancelledError:
            attempt.add_done_callback(lambda done: self._undo(done, key, owner))
            raise
        except Exception:
            # The commands may have run with their answer lost on the way: give back whatever
            # this owner may hold (RELEASE frees only what is ours), or it stays locked for a lease.
            self._in_background(self._release_quietly(key, owner))
            raise
        if token is None:
            return None
        if time.monotonic() >= started + lease:
            # The token came after the lease may have ended: another holder may have taken the
            # lock and a token before this one. Give it back and try again.
            self._in_background(self._release_quietly(key, owner))
            return None
        return _Cohort(owner, token, started + lease, lease)

    async def _try(
        self, key: str, lease: float, owner: str, taking: asyncio.Future[Any] | None = None
    ) -> int | None:
        """One attempt, its fencing token or None: SET NX PX GET (no script: one command, and a
        failed one answers the holder; `taking` if it was sent already), then, once acquired, the
        key's next token. The lock kept for this process's turn is taken by a script that checks
        it is."""
        if taking is None:
            holder = await self._wire.execute("SET", key, owner, "NX", "PX", _ms(lease), "GET")
        else:
            holder = await taking
        if holder is None:
            return await self._next_token(key)
        holder = _text(holder)
        if holder == self._turn and await self._take_turn(keys=[key], args=[_ms(lease), owner, self._turn]):
            return await self._next_token(key)
        await self._wait_for(key, holder)
        return None

    async def _next_token(self, key: str) -> int:
        token = int(await self._wire.execute("INCR", fence_of(key)))
        if token < CLOCK_FLOOR:
            token = int(await self._restart_fence(keys=[fence_of(key)]))
        return token

    async def _wait_for(self, key: str, holder: str) -> None:
        """Every process on the key's channel hears that this one waits, once per holder (and again
        after `REANNOUNCE`), and this process notes when the holder's lease ends: an owner of this
        code carries its lease (no command), any other holder is asked about (PTTL), as is a
        holder still there after the lease it carried (renewed for a longer one)."""
        state = self._keys.get(key) or _Key()
        now = time.monotonic()
        new = state.announced != holder
        announce = new or now - state.announced_at >= REANNOUNCE
        carried = _lease_of(holder) if new else None
        ask = carried is None and (new or now >= state.free_by)
        if not (announce or ask):
            return  # woken by an unlock that was not this holder's: it has heard already
        if announce:
            state.announced, state.announced_at = holder, now
            if not ask:
                # Not awaited: the waiter goes to sleep at once (one hop less on its way to the
                # lock); a lost announcement is said again after `REANNOUNCE`.
                self._in_background(self._wire.execute("PUBLISH", self._channel(key), self._waiting))
        if carried is not None:
            state.free_by = now + carried
        elif ask:
            commands: list[tuple[str, ...]] = [("PTTL", key)]
            if announce:
                commands.insert(0, ("PUBLISH", self._channel(key), self._waiting))
            left = (await self._wire.execute_many(commands))[-1]
            # -2: gone already (try now); -1: a key without a lease (try again in a while).
            state.free_by = now + (left / 1000 if left > 0 else 0 if left == -2 else REANNOUNCE)

    def _undo(self, attempt: asyncio.Future[Any], key: str, owner: str) -> None:
        # Also when the attempt failed: its SET may have taken the lock before the INCR failed.
        if attempt.cancelled() or attempt.exception() is not None or attempt.result() is not None:
            self._in_background(self._release_quietly(key, owner))

    async def _release_quietly(self, key: str, owner: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.release(key, owner)

    def _in_background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        # Said once here: with Redis away, an unretrieved failure would be a traceback at exit.
        self._background.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("lock: background step failed: %r", error)

    async def release(self, key: str, owner: str, *, turn: str = "", still_waiting: bool = False) -> bool:
        """Unlock if `owner` holds the lock; say whether it did (a lease that ended frees nothing).
        With `turn`, the lock is kept for that process (the longest waiting) for `RESERVED` seconds;
        with `still_waiting`, this process joins the line of those waiting for it."""
        kept = f"{TURN}:{turn}" if turn else ""
        args = [owner, self._unlocked(turn, still_waiting), kept, _ms(RESERVED)]
        return bool(await self._release(keys=[key, self._channel(key)], args=args))

    async def _unlock(self, key: str, cohort: _Cohort, *, turn: str, still_waiting: bool) -> bool:
        """`release`, in one round trip and without a script while the lease surely has a while to
        go (`SURE_LEASE`, and half the lease): counted from before the command that set it, it ends
        in Redis later than here, so GETDEL frees only what is ours unless the release stalls
        longer than that on its way (the same bet a lease makes about a paused holder; fencing
        and the stores' own checks still refuse what a second holder would write). Only then, or
        if Redis lost the key meanwhile (a restart without its data, a failover), can GETDEL answer
        another's value: that one is put back at once, with the lease it carries (else the
        watchdog's), which may be longer than it had left."""
        if cohort.expires - time.monotonic() <= max(SURE_LEASE, cohort.lease / 2):
            released = await self.release(key, cohort.owner, turn=turn, still_waiting=still_waiting)
            if not released and cohort.retired:
                released = await self.release(key, cohort.retired, turn=turn, still_waiting=still_waiting)
            return released
        commands: list[tuple[str, ...]] = [("GETDEL", key)]
        if turn:
            commands.append(("SET", key, f"{TURN}:{turn}", "NX", "PX", _ms(RESERVED)))
        commands.append(("PUBLISH", self._channel(key), self._unlocked(turn, still_waiting)))
        held = (await self._wire.execute_many(commands))[0]
        if held is None:
            return False
        held = _text(held)
        if held == cohort.owner or held == cohort.retired:
            return True
        log.warning("lock %s: its lease ended, or Redis lost it; the new holder's lock is put back", key)
        lease = _lease_of(held) or self._watchdog_lease
        await self._wire.execute("SET", key, held, "NX", "PX", _ms(lease))
        return False

    def _unlocked(self, turn: str, still_waiting: bool) -> str:
        return f"{UNLOCKED}:{self._process}:{turn}:{'+' if still_waiting else ''}"

    def _channel(self, key: str) -> str:
        channel = channel_of(key)
        self._channels[channel] = key
        return channel

    def _heard(self, channel: str, said: str) -> None:
        """Another process waits (a cohort then yields soon, to the longest waiting), or an unlock:
        free for all (wake the first waiter), or kept for the process whose turn it is."""
        state = self._keys.get(self._channels.get(channel, ""))
        what, _, rest = said.partition(":")
        process, _, rest = rest.partition(":")
        turn, _, still_waiting = rest.partition(":")
        if state is None:
            return
        now = time.monotonic()
        if what == GONE:
            state.others.pop(process, None)
            state.abstain_until = 0.0  # if its turn was kept for it, nobody will take it
            if state.cohort is None:
                state.wake_first()
            return
        if what == RENEWED:
            if state.cohort is None:
                state.free_by = 0.0  # the lease this process was told of got shorter: ask again
                state.wake_first()
            return
        if what == WAITING:
            if process != self._process:
                state.others.setdefault(process)
                if state.cohort is not None:
                    state.cohort.contended = True
            return
        state.others.pop(process, None)
        state.others.pop(turn, None)
        if still_waiting and process != self._process:
            state.others.setdefault(process)  # back in line, behind those already waiting
        if turn and turn != self._process:
            # Another's turn: stay out until it unlocks, or its reservation ends if it has gone.
            state.abstain_until = now + RESERVED
            if state.queue and now - state.announced_at >= REANNOUNCE:
                # Kept out without trying (so without saying it waits): say it again, in case
                # the first time went unheard, or those taking turns would never include us.
                state.announced_at = now
                self._in_background(self._wire.execute("PUBLISH", channel, self._waiting))
            state.wake_first()
            return
        if turn or process != self._process:
            state.abstain_until = 0.0  # our turn, or someone else had theirs: try now
        if state.cohort is None or state.cohort.expires <= now:
            state.wake_first()

    async def _watch(self, key: str, cohort: _Cohort) -> None:
        """Keep a lock taken without a lease alive while its holder lives."""
        lease = self._watchdog_lease
        while True:
            await asyncio.sleep(lease / 3)
            try:
                started = time.monotonic()
                if not await self._renew(
                    keys=[key, self._channel(key)], args=[_ms(lease), cohort.owner, "", ""]
                ):
                    return
                cohort.expires, cohort.lease = started + lease, lease
            except Exception as error:
                log.warning("lock %s: the watchdog could not renew (%r); trying again", key, error)
