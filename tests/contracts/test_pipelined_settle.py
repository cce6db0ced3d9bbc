"""A store's queued requests decided in parts, as a pipeline (`application.pipeline`), on every unit
of work: the same outcomes and numbers as one transaction, and a part that fails stops the rest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from adapters.lock.local import LocalLock
from adapters.notify.local import LocalNotifier
from adapters.status.local import LocalRequestStatuses
from application.announcements import Announcer
from application.ports import UnitOfWork
from application.registration import LockTimes, ProcessRegistrations
from application.requests import RegistrationRequest, RequestStatus
from domain.customer import Channel
from domain.store import Store

NOON_IN_SEOUL = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
Factory = Callable[[], UnitOfWork]


class Noon:
    def now(self) -> datetime:
        return NOON_IN_SEOUL


def _process(uow: Factory, most: int) -> ProcessRegistrations:
    return ProcessRegistrations(
        uow,
        LocalLock(),
        Noon(),
        LocalRequestStatuses(),
        Announcer(LocalNotifier(), uow),
        LockTimes(),
        most=most,
    )


async def _store(uow: Factory) -> Store:
    store = Store(id=0, name="Gamja", waiting_open=True)
    async with uow() as work:
        await work.stores.add(store)
        await work.commit()
    return store


def _request(store: Store, n: int, user: str | None = None) -> RegistrationRequest:
    return RegistrationRequest(
        trace_id=f"trace-{store.id}-{n}",
        store_id=store.id,
        channel=Channel.USER,
        party_size=2,
        requested_at=NOON_IN_SEOUL,
        user_id=user or f"user-{n}",
    )


def _tricky(store: Store) -> list[RegistrationRequest]:
    """Thirteen requests that cross parts of four: a customer joining again two parts later, a
    request delivered twice in neighbouring parts, and one at the very end of a part."""
    requests = [_request(store, n) for n in range(1, 11)]
    requests.insert(6, _request(store, 11, user="user-2"))  # already waiting, from part 1
    requests.insert(4, requests[2])  # delivered again, one part on (part 1 may not have committed)
    requests.append(_request(store, 12, user="user-10"))  # registered in this very part
    return requests


def _decisions(statuses: list[RequestStatus]) -> list[tuple[str, str, str | None]]:
    return [(s.trace_id, str(s.state), s.reason) for s in statuses]


async def _numbers(uow: Factory, store: Store, statuses: list[RequestStatus]) -> list[int | None]:
    async with uow() as work:
        numbered = []
        for status in statuses:
            waiting = await work.waitings.get(status.waiting_id) if status.waiting_id else None
            numbered.append(waiting.number if waiting else None)
        return numbered


async def test_parts_decide_as_one_transaction_would(uow: Factory) -> None:
    whole, parted = await _store(uow), await _store(uow)
    at_once = await _process(uow, most=1000).settle(_tricky(whole), fence=1)

    in_parts = await _process(uow, most=4).settle(_tricky(parted), fence=1)

    renamed = [(t.replace(f"-{whole.id}-", f"-{parted.id}-"), s, r) for t, s, r in _decisions(at_once)]
    assert _decisions(in_parts) == renamed
    assert [r for _, _, r in renamed].count("ALREADY_WAITING") == 2
    assert await _numbers(uow, parted, in_parts) == await _numbers(uow, whole, at_once)
    assert in_parts[2] == in_parts[4]  # the request delivered twice got its one outcome twice


class FailingCommit:
    """A unit of work whose `fail_at`-th commit (counted over the factory) fails."""

    def __init__(self, inner: UnitOfWork, commits: list[int], fail_at: int) -> None:
        self._inner, self._commits, self._fail_at = inner, commits, fail_at

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._inner.__aexit__(kind, error, tb)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def commit(self) -> None:
        self._commits.append(1)
        if len(self._commits) == self._fail_at:
            raise RuntimeError("the disk is full")
        await self._inner.commit()


async def test_a_part_that_fails_stops_those_after_it_and_a_retry_keeps_the_order(uow: Factory) -> None:
    store = await _store(uow)
    requests = [_request(store, n) for n in range(1, 15)]
    commits: list[int] = []
    failing = _process(lambda: FailingCommit(uow(), commits, fail_at=2), most=4)  # type: ignore[arg-type, return-value]

    try:
        await failing.settle(requests, fence=1)
    except RuntimeError as error:
        assert str(error) == "the disk is full"
    else:
        raise AssertionError("the failed part went unnoticed")

    async with uow() as work:
        kept = await work.requests.decided([r.trace_id for r in requests])
    assert set(kept) == {r.trace_id for r in requests[:4]}  # part 1 only: part 3 was not written
    retried = await _process(uow, most=4).settle(requests, fence=1)
    assert await _numbers(uow, store, retried) == list(range(1, 15))
