"""The ports the use cases depend on; adapters implement them, entrypoints choose which."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from application.requests import RegistrationRequest, RequestStatus
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus
from domain.waiting_list import WaitingList


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware."""
        ...


class Lock(Protocol):
    """A lock per key, with Redisson's RLock semantics.

    `hold` waits at most `wait_time` seconds, else raises `LockTimeout`. The lock expires
    `lease_time` seconds after it was taken, or, with `lease_time=None`, is kept alive by a
    watchdog for as long as the holder lives. Leaving the block unlocks only if this holder
    still owns the lock.

    The block is given a fencing token: it grows with each acquisition of the key, survives a
    restart of the lock's server (it follows the clock), and is never smaller than one given
    before. A store that remembers the largest token it saw (`StoreRepository.fence`) can refuse
    the late writes of a holder whose lease ended while it was paused.
    """

    def hold(
        self, key: str, *, wait_time: float, lease_time: float | None
    ) -> AbstractAsyncContextManager[int]: ...


class QueueUnavailable(Exception):
    """The registration queue did not confirm the write; nothing was queued."""


class RegistrationQueue(Protocol):
    async def publish(self, request: RegistrationRequest) -> None:
        """Return only once the request is durably queued; raise `QueueUnavailable` otherwise."""
        ...

    async def pending(self, store_id: int) -> list[RegistrationRequest]:
        """The store's queued requests not yet acknowledged by the worker, in queue order.

        Some may be decided already (the worker records before it acknowledges).
        """
        ...


class ConcurrencyConflict(Exception):
    """The store refused a write that raced another; retrying is safe."""


class StoreRepository(Protocol):
    async def add(self, store: Store) -> None:
        """Insert a new store; gives it its id."""
        ...

    async def get(self, store_id: int) -> Store | None: ...

    async def save(self, store: Store) -> None: ...

    async def fence(self, store_id: int, token: int) -> None:
        """Write under the store's lock only while `token` is the newest the store has seen.

        Raise `ConcurrencyConflict` when a larger token was seen: a newer holder of the lock
        wrote, so this holder's lease ended; the transaction must not commit.
        """
        ...


class WaitingRepository(Protocol):
    async def load_list(self, store: Store, business_date: date, customers: Collection[str]) -> WaitingList:
        """The day's list as registration needs it, for the given customer keys."""
        ...

    async def save_list(self, waiting_list: WaitingList) -> None:
        """Insert the list's new waitings (giving them ids) and advance its sequence."""
        ...

    async def insert_new(self, waiting_list: WaitingList) -> int:
        """`save_list`'s first half: insert the list's new waitings, giving them ids; how many.
        Nothing refuses a concurrent writer yet: `advance`, in the same transaction, does."""
        ...

    async def advance(self, waiting_list: WaitingList, joined: int) -> None:
        """`save_list`'s second half: advance the list's sequence over its last `joined` waitings,
        as inserted by `insert_new`; raise `ConcurrencyConflict` if it moved meanwhile."""
        ...

    async def get(self, waiting_id: int) -> Waiting | None: ...

    async def by_status_token(self, status_token: str) -> Waiting | None: ...

    async def save(self, waiting: Waiting, was: WaitingStatus, was_at: int | None = None) -> None:
        """Store a waiting's new status or place; raise `ConcurrencyConflict` if it is no longer `was`,
        or no longer at place `was_at` (by default: the place it has)."""
        ...

    async def of_store(
        self,
        store_id: int,
        business_date: date,
        status: WaitingStatus | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[Waiting]:
        """The day's waitings of a store in queue order (by place): only those placed after `after`,
        at most `limit`, if given."""
        ...

    async def count_waiting(self, store_id: int, business_date: date, below: int | None = None) -> int:
        """How many of the day's waitings are WAITING, only those placed before `below` if given."""
        ...

    async def last_calls(self, store_id: int, business_date: date, most: int) -> list[datetime]:
        """When the day's latest `most` calls were made (the waitings called, whatever they became
        since), latest first."""
        ...


class RequestLog(Protocol):
    """Decided registration requests, so that a traceId is applied at most once."""

    async def decided(self, trace_ids: Collection[str]) -> dict[str, RequestStatus]: ...

    async def record(self, *statuses: RequestStatus) -> None:
        """Keep the outcomes; raise `ConcurrencyConflict` if one was recorded already."""
        ...


class UnitOfWork(Protocol):
    """One transaction; rolled back on exit unless committed."""

    stores: StoreRepository
    waitings: WaitingRepository
    requests: RequestLog
    close_alerts: CloseAlerts
    webhooks: WebhookOutbox

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make the work durable; raise `ConcurrencyConflict` when a constraint refused it."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class Event:
    """One message of a live stream. Ids grow within a stream, so a client can resume."""

    id: str
    type: str
    data: Mapping[str, Any]


class Subscription(Protocol):
    missed: list[Event] | None
    """Events after the client's Last-Event-ID, or None: no id given, or its events not kept."""

    head: str
    """The id of the stream's latest event when the subscription began ("0" for none)."""

    def __aiter__(self) -> AsyncIterator[Event]: ...


class Notifier(Protocol):
    async def publish(self, stream: str, event_type: str, data: Mapping[str, Any]) -> None: ...

    async def publish_all(self, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """`publish` each (stream, event type, data), in order; many streams' events at once."""
        ...

    def subscribe(
        self, stream: str, last_event_id: str | None
    ) -> AbstractAsyncContextManager[Subscription]: ...


class RequestStatusStore(Protocol):
    """Where a queued request's status is kept for polling and for waiting on its outcome."""

    async def put(self, status: RequestStatus) -> None: ...

    async def put_all(self, statuses: Sequence[RequestStatus]) -> None:
        """`put` each, in order; a batch's outcomes at once."""
        ...

    async def get(self, trace_id: str) -> RequestStatus | None: ...

    async def wait_decided(self, trace_id: str, within: float) -> RequestStatus | None:
        """The status once decided, or the latest known one when `within` seconds pass first."""
        ...

    async def forget(self, trace_id: str) -> None:
        """Drop the status unless it is decided."""
        ...


@dataclass(frozen=True)
class KeptAnswer:
    """An answer as its client got it, to be given again: the status, the media type, the body's bytes."""

    status: int
    media_type: str
    body: bytes


@dataclass(frozen=True)
class KeyRecord:
    """What is kept of a request sent under an Idempotency-Key, for one caller and key.

    While it is answered, the claim `claim` holds it until `held_until`; once answered, it keeps
    the answer (and `held_until` is None). `request_id` names the work done for it (the traceId of
    its registration), the same for every attempt that takes the record over.
    """

    caller: str
    key: str
    fingerprint: str
    request_id: str
    claim: str
    expires_at: datetime
    held_until: datetime | None
    answer: KeptAnswer | None = None


class IdempotencyKeys(Protocol):
    """Records of requests sent under an Idempotency-Key, one per caller and key.

    Each method is one atomic step on its own, whoever else uses the same store meanwhile (other
    tasks, other processes on the same database): `add` and `replace` are how two attempts racing
    for one key find out which of them won.
    """

    async def add(self, record: KeyRecord) -> bool:
        """Keep a new record; False, keeping nothing, if one is kept for its caller and key already."""
        ...

    async def get(self, caller: str, key: str) -> KeyRecord | None: ...

    async def replace(self, claim: str, record: KeyRecord) -> bool:
        """Put `record` in place of the one kept for its caller and key, only while that one is
        held by `claim`; False, changing nothing, otherwise."""
        ...

    async def remove(self, caller: str, key: str, claim: str) -> None:
        """Forget the record of the caller and key, only while `claim` holds it."""
        ...

    async def remove_expired(self, now: datetime, most: int) -> int:
        """Forget at most `most` records that expired by `now` (soonest expired first); how many were."""
        ...


class CloseAlerts(Protocol):
    """Which waitings were told that their turn is getting close (DOMAIN.md): each at most once,
    however many processes announce ranks at the same time."""

    async def mark(self, waiting_ids: Collection[int], now: datetime) -> set[int]:
        """Mark those of the waitings that are still WAITING and were never marked; which they were.

        Of two transactions marking the same waiting, only one commits it: the other does not get
        it back (it waits for the first), or its commit raises `ConcurrencyConflict`.
        """
        ...


@dataclass(frozen=True)
class NewWebhook:
    """A webhook to send to a store's endpoint: `body` is the JSON text to sign and send."""

    store_id: int
    url: str
    body: str


@dataclass(frozen=True)
class WebhookDelivery:
    """A webhook taken to be sent; `attempts` counts this one, and names it in what follows."""

    id: int
    store_id: int
    url: str
    body: str
    attempts: int


class WebhookOutbox(Protocol):
    """Webhooks waiting to be sent, kept with the change that made them (at least once, in order
    of when they are due, by any process of the service)."""

    async def add(self, webhooks: Sequence[NewWebhook], now: datetime) -> None:
        """Keep them, due at once."""
        ...

    async def claim(self, now: datetime, until: datetime, most: int) -> list[WebhookDelivery]:
        """Take at most `most` deliveries due by `now`, soonest due first, counting an attempt for
        each: nobody else takes them again before `until` (unless this attempt's outcome says so)."""
        ...

    async def retry(self, delivery: WebhookDelivery, at: datetime, error: str) -> None:
        """Due again at `at`, if this attempt still holds it."""
        ...

    async def finish(self, delivery: WebhookDelivery) -> None:
        """Sent, or no longer wanted: forget it, if this attempt still holds it."""
        ...

    async def give_up(self, delivery: WebhookDelivery, error: str) -> None:
        """Never try it again (kept, for an operator, with why), if this attempt still holds it."""
        ...


class WebhookNotDelivered(Exception):
    """The endpoint did not take a webhook; `retry` says whether a later attempt may (an answer
    5xx or 429, a timeout, no connection), or may not (any other answer, a forbidden address)."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.retry = retry


class WebhookSender(Protocol):
    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        """POST the JSON `body` with `headers`; return once the endpoint answered 2xx, else raise
        `WebhookNotDelivered`. Never to an address that is not public, unless so configured."""
        ...
