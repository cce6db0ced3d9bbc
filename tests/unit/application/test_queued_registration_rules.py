"""V3's worker: the one-active-waiting rule against what earlier requests left, and its retry of a
batch that raced another writer (only a lost lease lets one in)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from adapters.persistence.memory import MemoryDatabase, MemoryUnitOfWork
from application.ports import ConcurrencyConflict, UnitOfWork
from application.registration import MAX_CONFLICT_RETRIES
from application.requests import RequestState, RequestStatus
from domain.errors import AlreadyWaiting
from domain.waiting import WaitingStatus
from unit.helpers import Service, guest_request, staff, user_request

Race = Callable[[], Awaitable[None]]


def states(outcomes: Sequence[RequestStatus]) -> list[tuple[str, str | None]]:
    return [(str(o.state), o.reason) for o in outcomes]


class TestAlreadyWaiting:
    async def test_a_customer_waiting_from_v2_is_refused_by_the_worker(self) -> None:
        service = Service()
        store = await service.add_store()
        await service.register(user_request(store.id, "u1"))
        await service.register(guest_request(store.id, "+821011112222"))

        outcomes = await service.process(
            [
                user_request(store.id, "u1"),
                guest_request(store.id, "+821011112222", name="같은 사람"),
                user_request(store.id, "u2"),
            ]
        )

        assert states(outcomes) == [
            ("REJECTED", "ALREADY_WAITING"),
            ("REJECTED", "ALREADY_WAITING"),
            ("REGISTERED", None),
        ]
        assert service.waiting_numbers(store.id) == [1, 2, 3]

    async def test_a_customer_waiting_from_an_earlier_batch_is_refused(self) -> None:
        service = Service()
        store = await service.add_store()
        await service.process([user_request(store.id, "u1"), guest_request(store.id, "+821011112222")])

        outcomes = await service.process(
            [
                guest_request(store.id, "+821011112222"),
                user_request(store.id, "u2"),
                user_request(store.id, "u1"),
            ]
        )

        assert states(outcomes) == [
            ("REJECTED", "ALREADY_WAITING"),
            ("REGISTERED", None),
            ("REJECTED", "ALREADY_WAITING"),
        ]
        assert service.waiting_numbers(store.id) == [1, 2, 3]

    async def test_a_customer_called_from_an_earlier_batch_is_still_refused(self) -> None:
        service = Service()
        store = await service.add_store()
        [first] = await service.process([user_request(store.id, "u1")])
        await service.move.by_store(staff(store.id), store.id, first.waiting_id or 0, "call")

        [again] = await service.process([user_request(store.id, "u1")])

        assert (again.state, again.reason) == (RequestState.REJECTED, "ALREADY_WAITING")

    async def test_a_customer_left_waiting_or_called_yesterday_is_not_refused_today(self) -> None:
        service = Service()
        store = await service.add_store(max_queue_size=2)
        await service.register(user_request(store.id, "u1"))
        [called] = await service.process([user_request(store.id, "u2")])
        await service.move.by_store(staff(store.id), store.id, called.waiting_id or 0, "call")
        service.clock.advance(timedelta(days=1))

        outcomes = await service.process([user_request(store.id, "u1"), user_request(store.id, "u2")])

        assert states(outcomes) == [("REGISTERED", None), ("REGISTERED", None)]
        today = [service.db.waitings[o.waiting_id or 0] for o in outcomes]
        assert [(w.number, w.business_date.isoformat()) for w in today] == [
            (1, "2026-03-03"),
            (2, "2026-03-03"),
        ]
        # Yesterday's are untouched: still WAITING and CALLED, on their own day.
        statuses = sorted(str(w.status) for w in service.db.waitings.values() if w not in today)
        assert statuses == [str(WaitingStatus.CALLED), str(WaitingStatus.WAITING)]


class RacedUnitOfWork(MemoryUnitOfWork):
    """The memory unit of work; before a commit it first plays the next of `races`: another writer
    that got in while this one's lease had ended."""

    def __init__(self, db: MemoryDatabase, races: list[Race]) -> None:
        super().__init__(db)
        self._races = races

    async def commit(self) -> None:
        if self._races:
            await self._races.pop(0)()
        await super().commit()


@dataclass
class RacedService(Service):
    races: list[Race] = field(default_factory=list)
    commits_raced: int = 0

    def uow(self) -> UnitOfWork:
        return RacedUnitOfWork(self.db, self.races)

    def another_writer(self, user_id: str, then: Exception | None = None) -> Race:
        """A worker of its own lock registers `user_id`, and commits; `then` is raised after."""

        async def race() -> None:
            self.commits_raced += 1
            other = Service(db=self.db, clock=self.clock)
            [outcome] = await other.process([user_request(next(iter(self.db.stores)), user_id)])
            assert outcome.state is RequestState.REGISTERED
            if then is not None:
                raise then

        return race


class TestConflictRetry:
    async def test_a_batch_refused_at_commit_is_decided_again_on_fresh_data(self) -> None:
        service = RacedService()
        store = await service.add_store()
        service.races.append(service.another_writer("intruder"))  # the day's sequence moves under us
        batch = [user_request(store.id, "u1"), user_request(store.id, "u2")]

        outcomes = await service.process(batch)

        assert service.commits_raced == 1 and service.races == []
        assert states(outcomes) == [("REGISTERED", None), ("REGISTERED", None)]
        assert [service.db.waitings[o.waiting_id or 0].number for o in outcomes] == [2, 3]
        assert service.waiting_numbers(store.id) == [1, 2, 3]
        assert {t: service.db.requests[t] for t in (r.trace_id for r in batch)} == {
            o.trace_id: o for o in outcomes
        }
        assert [await service.statuses.get(r.trace_id) for r in batch] == outcomes

    async def test_a_customer_refused_by_the_databases_index_gets_already_waiting_on_retry(self) -> None:
        service = RacedService()
        store = await service.add_store()
        # As the SQL adapter answers when the partial unique index refuses the insert.
        service.races.append(service.another_writer("u1", then=AlreadyWaiting("index refused")))

        outcomes = await service.process([user_request(store.id, "u1"), user_request(store.id, "u2")])

        assert service.commits_raced == 1
        assert states(outcomes) == [("REJECTED", "ALREADY_WAITING"), ("REGISTERED", None)]
        assert service.waiting_numbers(store.id) == [1, 2]

    async def test_a_batch_that_keeps_racing_gives_up_and_records_nothing(self) -> None:
        service = RacedService()
        store = await service.add_store()

        async def refused() -> None:
            service.commits_raced += 1
            raise ConcurrencyConflict("another writer won")

        service.races.extend([refused] * (MAX_CONFLICT_RETRIES + 2))
        request = user_request(store.id, "u1")

        with pytest.raises(ConcurrencyConflict):
            await service.process([request])

        assert service.commits_raced == MAX_CONFLICT_RETRIES + 1
        assert service.db.waitings == {} and service.db.requests == {}
