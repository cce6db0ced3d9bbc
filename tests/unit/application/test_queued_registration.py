"""V3: SubmitRegistration queues; ProcessRegistrations decides each traceId exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from adapters.queue.local import LocalRegistrationQueue
from application.ports import QueueUnavailable, UnitOfWork
from application.registration import RecentStores
from application.requests import RegistrationRequest, RequestState, RequestStatus
from domain.errors import StoreNotFound, ValidationError
from unit.helpers import Service, event_types, guest_request, staff, user_request


def states(outcomes: Sequence[RequestStatus]) -> list[tuple[str, str | None]]:
    return [(str(o.state), o.reason) for o in outcomes]


class TestSubmitRegistration:
    async def test_a_request_is_queued_and_known_as_queued(self) -> None:
        service = Service()
        store = await service.add_store()
        request = user_request(store.id)

        status = await service.submit(request)

        assert status.state is RequestState.QUEUED
        assert await service.statuses.get(request.trace_id) == status
        assert service.queue.depth() == 1

    async def test_an_unknown_store_is_refused_before_queueing(self) -> None:
        service = Service()

        with pytest.raises(StoreNotFound):
            await service.submit(user_request(404))

        assert service.queue.depth() == 0

    async def test_a_bad_party_size_is_refused_before_queueing(self) -> None:
        service = Service()
        store = await service.add_store(max_party_size=2)

        with pytest.raises(ValidationError):
            await service.submit(user_request(store.id, party_size=3))

        assert service.queue.depth() == 0

    async def test_a_closed_store_is_decided_by_the_worker_not_at_submission(self) -> None:
        service = Service()
        store = await service.add_store(waiting_open=False)
        request = user_request(store.id)

        await service.submit(request)
        [outcome] = await service.process([request])

        assert (outcome.state, outcome.reason) == (RequestState.REJECTED, "WAITING_CLOSED")


class LateQueue(LocalRegistrationQueue):
    """A broker's client that timed out, yet delivers the write later (or did already)."""

    async def publish(self, request: RegistrationRequest) -> None:
        await super().publish(request)
        raise QueueUnavailable("no acknowledgement in time")


class TestSubmissionThatTimesOut:
    async def test_a_request_answered_unavailable_changes_nothing_if_it_arrives_later(self) -> None:
        service = Service(queue=LateQueue())
        store = await service.add_store()
        request = user_request(store.id)

        with pytest.raises(QueueUnavailable):
            await service.submit(request)
        [late] = await service.process(await service.queue.pending(store.id))

        assert (late.state, late.reason) == (RequestState.REJECTED, "UNAVAILABLE")
        assert service.db.waitings == {}
        assert await service.statuses.get(request.trace_id) != RequestStatus.queued(request)

    async def test_a_request_decided_before_its_write_timed_out_is_answered_queued(self) -> None:
        service = Service(queue=LateQueue())
        store = await service.add_store()
        request = user_request(store.id)
        quick = service.queue.publish

        async def decided_at_once(queued: RegistrationRequest) -> None:
            # The consumer was quicker than the acknowledgement.
            await service.process([queued])
            await quick(queued)

        service.queue.publish = decided_at_once  # type: ignore[method-assign]

        status = await service.submit(request)

        assert status.state is RequestState.QUEUED  # it got through: 202, and the outcome follows
        assert service.db.requests[request.trace_id].state is RequestState.REGISTERED


class TestProcessRegistrations:
    async def test_a_batch_is_numbered_in_queue_order(self) -> None:
        service = Service()
        store = await service.add_store()
        batch = [user_request(store.id, f"u{i}") for i in range(4)]

        outcomes = await service.process(batch)

        assert all(o.state is RequestState.REGISTERED for o in outcomes)
        numbers = [service.db.waitings[o.waiting_id or 0].number for o in outcomes]
        assert numbers == [1, 2, 3, 4]

    async def test_outcomes_are_logged_published_and_announced(self) -> None:
        service = Service()
        store = await service.add_store()
        request = user_request(store.id)

        [outcome] = await service.process([request])

        assert service.db.requests[request.trace_id] == outcome
        assert await service.statuses.get(request.trace_id) == outcome
        assert await event_types(service.notifier, f"store:{store.id}") == ["registered"]

    async def test_delivering_a_request_twice_registers_it_once_with_the_same_outcome(self) -> None:
        service = Service()
        store = await service.add_store()
        request = user_request(store.id)

        first = await service.process([request])
        second = await service.process([request])

        assert first == second
        assert service.waiting_numbers(store.id) == [1]

    async def test_a_request_repeated_within_one_batch_registers_once(self) -> None:
        service = Service()
        store = await service.add_store()
        request, other = user_request(store.id, "u1"), user_request(store.id, "u2")

        outcomes = await service.process([request, other, request])

        assert outcomes[0] == outcomes[2]
        assert service.waiting_numbers(store.id) == [1, 2]
        assert service.db.waitings[outcomes[1].waiting_id or 0].number == 2

    async def test_a_redelivered_rejection_stays_the_same_rejection(self) -> None:
        service = Service()
        store = await service.add_store(max_queue_size=1)
        admitted, refused = user_request(store.id, "u1"), user_request(store.id, "u2")
        [registered, _] = await service.process([admitted, refused])
        # Room frees up, yet the recorded outcome of the refused request must not change.
        await service.move.by_store(staff(store.id), store.id, registered.waiting_id or 0, "cancel")

        [again] = await service.process([refused])

        assert (again.state, again.reason) == (RequestState.REJECTED, "QUEUE_FULL")
        assert service.waiting_numbers(store.id) == [1]

    async def test_rejections_record_their_code_and_take_no_number(self) -> None:
        service = Service()
        store = await service.add_store(max_party_size=4, max_queue_size=3)
        batch = [
            user_request(store.id, "u1"),
            user_request(store.id, "u1"),
            user_request(store.id, "u2", party_size=5),
            guest_request(store.id, "+821011112222"),
            guest_request(store.id, "+821011112222", name="other"),
            user_request(store.id, "u3"),
            user_request(store.id, "u4"),
        ]

        outcomes = await service.process(batch)

        assert states(outcomes) == [
            ("REGISTERED", None),
            ("REJECTED", "ALREADY_WAITING"),
            ("REJECTED", "VALIDATION_ERROR"),
            ("REGISTERED", None),
            ("REJECTED", "ALREADY_WAITING"),
            ("REGISTERED", None),
            ("REJECTED", "QUEUE_FULL"),
        ]
        assert service.waiting_numbers(store.id) == [1, 2, 3]
        assert {o.trace_id: o for o in outcomes} == {
            r.trace_id: service.db.requests[r.trace_id] for r in batch
        }

    async def test_an_unknown_store_is_rejected_as_not_found(self) -> None:
        service = Service()
        request = user_request(404)

        [outcome] = await service.process([request])

        assert (outcome.state, outcome.reason) == (RequestState.REJECTED, "STORE_NOT_FOUND")
        assert service.db.requests[request.trace_id] == outcome

    async def test_each_store_in_a_batch_has_its_own_sequence(self) -> None:
        service = Service()
        bakery, noodles = await service.add_store(), await service.add_store("Noodle Bar")
        batch = [user_request(s.id, f"u{i}") for i in range(3) for s in (bakery, noodles)]

        await service.process(batch)

        assert service.waiting_numbers(bakery.id) == service.waiting_numbers(noodles.id) == [1, 2, 3]


class TestQueueWorker:
    async def test_the_worker_decides_what_was_submitted(self) -> None:
        service = Service()
        store = await service.add_store()
        await service.queue.start(service.process)
        requests = [user_request(store.id, f"u{i}") for i in range(3)]

        for request in requests:
            await service.submit(request)
        decided = await service.statuses.wait_decided(requests[-1].trace_id, within=1)
        await service.queue.stop()

        assert decided is not None and decided.state is RequestState.REGISTERED
        assert service.waiting_numbers(store.id) == [1, 2, 3]

    async def test_a_batch_redelivered_after_a_crash_is_not_registered_twice(self) -> None:
        service = Service()
        store = await service.add_store()
        crashed: list[bool] = []

        async def crash_once_after_committing(batch: Sequence[RegistrationRequest]) -> None:
            await service.process(batch)
            if not crashed:
                crashed.append(True)
                raise RuntimeError("worker died before acknowledging")

        await service.queue.start(crash_once_after_committing)
        request = user_request(store.id)
        await service.submit(request)
        await service.queue.stop()

        assert crashed
        assert await service.queue.dead_letters() == []
        assert service.waiting_numbers(store.id) == [1]
        assert (await service.statuses.get(request.trace_id)).state is RequestState.REGISTERED  # type: ignore[union-attr]


class TestRecentStores:
    async def test_a_store_read_a_moment_ago_is_not_read_again_until_it_is_old(self) -> None:
        service = Service()
        store = await service.add_store(max_party_size=4)
        now = [0.0]
        stores = RecentStores(service.uow_factory, fresh_for=1.0, clock=lambda: now[0])
        assert (await stores.get(store.id)).max_party_size == 4

        service.db.stores[store.id] = replace(service.db.stores[store.id], max_party_size=2)
        now[0] = 0.9
        assert (await stores.get(store.id)).max_party_size == 4  # still fresh enough
        now[0] = 1.1
        assert (await stores.get(store.id)).max_party_size == 2

    async def test_accepts_that_arrive_together_share_one_read_of_the_store(self) -> None:
        service = Service()
        store = await service.add_store()
        opened = 0

        def counted() -> UnitOfWork:
            nonlocal opened
            opened += 1
            return service.uow_factory()

        stores = RecentStores(counted)
        read = await asyncio.gather(*(stores.get(store.id) for _ in range(100)))
        assert opened == 1 and {s.id for s in read} == {store.id}
        with pytest.raises(StoreNotFound):  # a failed read is told to each who waited for it
            await asyncio.gather(*(stores.get(404) for _ in range(3)))
        assert opened == 2

    async def test_an_unknown_store_is_never_remembered(self) -> None:
        service = Service()
        stores = RecentStores(service.uow_factory)
        for _ in range(2):
            with pytest.raises(StoreNotFound):
                await stores.get(404)
