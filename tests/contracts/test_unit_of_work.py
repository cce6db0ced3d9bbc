"""One contract for the unit of work and its repositories, run against every implementation."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from application.ports import ConcurrencyConflict, UnitOfWork
from application.requests import RequestState, RequestStatus
from domain.customer import Customer
from domain.errors import AlreadyWaiting
from domain.store import Store
from domain.waiting import Canceller, WaitingStatus
from domain.waiting_list import Registration, WaitingList

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
DAY = date(2026, 11, 25)
Factory = Callable[[], UnitOfWork]


async def _store(uow: Factory, **settings: object) -> Store:
    store = Store(id=0, name="Gamja", waiting_open=True, **settings)  # type: ignore[arg-type]
    async with uow() as work:
        await work.stores.add(store)
        await work.commit()
    return store


def _registration(n: int, store: Store, customer: Customer | None = None) -> Registration:
    return Registration(
        trace_id=f"trace-{store.id}-{n}",
        customer=customer or Customer.user(f"user-{n}"),
        party_size=2,
        status_token=f"token-{store.id}-{n}-a-long-random-part",
    )


async def _register(uow: Factory, store: Store, *numbers: int) -> None:
    async with uow() as work:
        day = await work.waitings.load_list(store, DAY, [f"user:user-{n}" for n in numbers])
        for n in numbers:
            day.register(_registration(n, store), NOW)
        await work.waitings.save_list(day)
        await work.commit()


async def test_a_store_is_added_with_an_id_and_read_back(uow: Factory) -> None:
    store = await _store(uow, max_queue_size=30, avg_service_minutes=4)
    async with uow() as work:
        assert await work.stores.get(store.id) == store
        assert await work.stores.get(store.id + 1000) is None


async def test_nothing_is_kept_without_commit(uow: Factory) -> None:
    store = await _store(uow)
    async with uow() as work:
        store.close_waiting()
        await work.stores.save(store)
    async with uow() as work:
        kept = await work.stores.get(store.id)
    assert kept is not None and kept.waiting_open


async def test_saved_list_gives_ids_and_advances_the_sequence(uow: Factory) -> None:
    store = await _store(uow)
    await _register(uow, store, 1, 2, 3)
    async with uow() as work:
        day = await work.waitings.load_list(store, DAY, ["user:user-2", "user:nobody"])
        waitings = await work.waitings.of_store(store.id, DAY)
    assert (day.last_number, day.active_count, day.waiting_count) == (3, 3, 3)
    assert day.active_customers == {"user:user-2"}
    assert [w.number for w in waitings] == [1, 2, 3]
    assert all(w.id is not None for w in waitings)


async def test_a_waiting_reads_back_equal(uow: Factory) -> None:
    store = await _store(uow)
    guest = Customer.guest("김민수", "+821012345678")
    async with uow() as work:
        day = await work.waitings.load_list(store, DAY, [guest.key])
        waiting = day.register(_registration(1, store, guest), NOW)
        await work.waitings.save_list(day)
        await work.commit()
    async with uow() as work:
        assert waiting.id is not None
        by_id = await work.waitings.get(waiting.id)
        by_token = await work.waitings.by_status_token(waiting.status_token)
        assert await work.waitings.by_status_token("no-such-token") is None
        assert await work.waitings.by_status_token(waiting.status_token + "\x00") is None
        # Same selector, wrong secret part: not found.
        assert await work.waitings.by_status_token(waiting.status_token[:12] + "x" * 20) is None
    assert by_id == waiting == by_token


async def test_status_changes_are_saved_and_counted(uow: Factory) -> None:
    store = await _store(uow)
    await _register(uow, store, 1, 2, 3)
    async with uow() as work:
        first = (await work.waitings.of_store(store.id, DAY))[0]
        first.call(NOW)
        await work.waitings.save(first, WaitingStatus.WAITING)
        await work.commit()
    async with uow() as work:
        assert await work.waitings.count_waiting(store.id, DAY) == 2
        assert await work.waitings.count_waiting(store.id, DAY, below=3) == 1
        called = await work.waitings.of_store(store.id, DAY, WaitingStatus.CALLED)
        day = await work.waitings.load_list(store, DAY, [])
    assert [w.number for w in called] == [1]
    assert called[0].called_at == NOW
    assert (day.active_count, day.waiting_count) == (3, 2)


async def test_a_stale_status_change_is_refused(uow: Factory) -> None:
    store = await _store(uow)
    await _register(uow, store, 1)
    async with uow() as work:
        waiting = (await work.waitings.of_store(store.id, DAY))[0]
    waiting.cancel(NOW, Canceller.CUSTOMER)
    with pytest.raises(ConcurrencyConflict):
        async with uow() as work:
            await work.waitings.save(waiting, WaitingStatus.CALLED)
            await work.commit()


async def _in_one(work: UnitOfWork, day: WaitingList) -> None:
    await work.waitings.save_list(day)


async def _in_halves(work: UnitOfWork, day: WaitingList) -> None:
    await work.waitings.advance(day, await work.waitings.insert_new(day))


@pytest.mark.parametrize("save", [_in_one, _in_halves], ids=["save_list", "insert_new-advance"])
async def test_two_writers_of_one_sequence_cannot_both_win(
    uow: Factory, save: Callable[[UnitOfWork, WaitingList], Awaitable[None]]
) -> None:
    """What the lock prevents (a writer deciding on a stale read); the store refuses it too."""
    store = await _store(uow)
    await _register(uow, store, 1)
    async with uow() as reader:
        stale = await reader.waitings.load_list(store, DAY, [])
    await _register(uow, store, 2)
    stale.register(_registration(3, store), NOW)
    with pytest.raises(ConcurrencyConflict):
        async with uow() as work:
            await save(work, stale)
            await work.commit()
    async with uow() as work:
        assert [w.number for w in await work.waitings.of_store(store.id, DAY)] == [1, 2]


async def test_a_list_saved_in_two_halves_is_saved_as_in_one(uow: Factory) -> None:
    """insert_new then advance, as the pipelined worker writes: the same rows, ids, counts and ranks."""
    whole, halves = await _store(uow), await _store(uow)
    await _register(uow, whole, 1, 2, 3)
    async with uow() as work:
        day = await work.waitings.load_list(halves, DAY, [])
        for n in (1, 2, 3):
            day.register(_registration(n, halves), NOW)
        assert await work.waitings.insert_new(day) == 3
        assert all(w.id is not None for w in day.registered)
        await work.waitings.advance(day, 3)
        await work.commit()
    async with uow() as work:
        read = [await work.waitings.load_list(store, DAY, []) for store in (whole, halves)]
        ranked = [await work.waitings.count_waiting(store.id, DAY, below=3) for store in (whole, halves)]
        numbers = [[w.number for w in await work.waitings.of_store(s.id, DAY)] for s in (whole, halves)]
    assert [(d.last_number, d.active_count, d.waiting_count) for d in read] == [(3, 3, 3)] * 2
    assert ranked[0] == ranked[1] and numbers == [[1, 2, 3]] * 2


async def test_a_second_active_waiting_of_one_customer_is_refused(uow: Factory) -> None:
    store = await _store(uow)
    await _register(uow, store, 1)
    async with uow() as reader:
        blind = await reader.waitings.load_list(store, DAY, [])
    again = _registration(1, store)
    blind.register(Registration("another-trace", again.customer, 2, "another-token-part"), NOW)
    with pytest.raises(AlreadyWaiting):
        async with uow() as work:
            await work.waitings.save_list(blind)
            await work.commit()


async def test_active_means_today_a_customer_left_open_yesterday_registers_again(uow: Factory) -> None:
    store = await _store(uow, max_queue_size=1)
    await _register(uow, store, 1)
    async with uow() as work:
        today = await work.waitings.load_list(store, DAY + timedelta(days=1), ["user:user-1"])
        today.register(_registration(2, store, Customer.user("user-1")), NOW + timedelta(days=1))
        await work.waitings.save_list(today)
        await work.commit()
    async with uow() as work:
        yesterday = await work.waitings.load_list(store, DAY, ["user:user-1"])
    assert (today.last_number, today.active_count, today.active_customers) == (1, 1, {"user:user-1"})
    assert (yesterday.active_count, yesterday.waiting_count, yesterday.active_customers) == (
        1,
        1,
        {"user:user-1"},
    )


async def test_a_trace_id_makes_one_waiting_only(uow: Factory) -> None:
    store = await _store(uow)
    await _register(uow, store, 1)
    async with uow() as work:
        other_day = await work.waitings.load_list(store, DAY + timedelta(days=1), [])
    replayed = _registration(1, store, Customer.user("someone-else"))
    other_day.register(replace(replayed, status_token="a-fresh-token-for-the-replay"), NOW)
    with pytest.raises(ConcurrencyConflict):
        async with uow() as work:
            await work.waitings.save_list(other_day)
            await work.commit()


async def test_request_outcomes_are_recorded_once(uow: Factory) -> None:
    status = RequestStatus("trace-1", 1, RequestState.REJECTED, user_id="7", reason="WAITING_CLOSED")
    async with uow() as work:
        await work.requests.record(status)
        await work.commit()
    async with uow() as work:
        assert await work.requests.decided(["trace-1", "trace-2"]) == {"trace-1": status}
    with pytest.raises(ConcurrencyConflict):
        async with uow() as work:
            await work.requests.record(status)
            await work.commit()


async def test_stores_and_days_are_independent(uow: Factory) -> None:
    one, two = await _store(uow), await _store(uow)
    await _register(uow, one, 1, 2)
    await _register(uow, two, 1)
    async with uow() as work:
        assert (await work.waitings.load_list(two, DAY, [])).last_number == 1
        assert (await work.waitings.load_list(one, date(2026, 11, 26), [])).last_number == 0


async def test_a_write_under_an_older_fencing_token_is_refused_and_stores_nothing(uow: Factory) -> None:
    store = await _store(uow)
    async with uow() as work:
        await work.stores.fence(store.id, 100)
        await work.commit()
    # The holder of token 100 pauses past its lease; the next holder (200) writes meanwhile.
    async with uow() as newer:
        await newer.stores.fence(store.id, 200)
        await newer.commit()
    with pytest.raises(ConcurrencyConflict):
        async with uow() as late:
            day = await late.waitings.load_list(store, DAY, ["user:user-1"])
            day.register(_registration(1, store), NOW)
            await late.stores.fence(store.id, 100)
            await late.waitings.save_list(day)
            await late.commit()
    async with uow() as work:
        await work.stores.fence(store.id, 200)  # the same holder again (a cohort shares a token)
        assert await work.waitings.of_store(store.id, DAY) == []


async def test_yesterdays_leftover_waitings_count_neither_in_todays_rank_nor_in_its_count(
    uow: Factory,
) -> None:
    store = await _store(uow)
    await _register(uow, store, 1, 2, 3)  # left WAITING when their day ends
    tomorrow = DAY + timedelta(days=1)
    async with uow() as work:
        today = await work.waitings.load_list(store, tomorrow, ["user:user-4", "user:user-5"])
        assert (today.last_number, today.active_count, today.waiting_count) == (0, 0, 0)
        for n in (4, 5):
            today.register(_registration(n, store), NOW + timedelta(days=1))
        await work.waitings.save_list(today)
        await work.commit()
    async with uow() as work:
        counts = [await work.waitings.count_waiting(store.id, tomorrow, below) for below in (None, 1, 2, 99)]
        reloaded = await work.waitings.load_list(store, tomorrow, [])
        left_over = await work.waitings.count_waiting(store.id, DAY, below=99)
    # V2 answers the newest's rank from the loaded list's count; reads answer from count_waiting.
    assert today.waiting_count == 2
    assert counts == [2, 0, 1, 2]
    assert (reloaded.last_number, reloaded.active_count, reloaded.waiting_count) == (2, 2, 2)
    assert left_over == 3


async def test_two_writers_starting_a_day_cannot_both_win(uow: Factory) -> None:
    """The first write of a day inserts its sequence: a racing second insert is a conflict."""
    store = await _store(uow)
    async with uow() as reader:
        first = await reader.waitings.load_list(store, DAY, [])
    async with uow() as reader:
        second = await reader.waitings.load_list(store, DAY, [])
    first.register(_registration(1, store), NOW)
    second.register(_registration(2, store), NOW)
    async with uow() as work:
        await work.waitings.save_list(first)
        await work.commit()
    with pytest.raises(ConcurrencyConflict):
        async with uow() as work:
            await work.waitings.save_list(second)
            await work.commit()
    async with uow() as work:
        kept = await work.waitings.of_store(store.id, DAY)
    assert [(w.number, w.trace_id) for w in kept] == [(1, f"trace-{store.id}-1")]


async def test_a_status_change_that_breaks_a_unique_constraint_is_refused(uow: Factory) -> None:
    """The second line of defence on updates too: a bug above that copies another waiting's
    traceId into a saved waiting is refused, and nothing of the change is kept."""
    store = await _store(uow)
    await _register(uow, store, 1, 2)
    async with uow() as work:
        one, two = await work.waitings.of_store(store.id, DAY)
    two.trace_id = one.trace_id
    two.call(NOW)
    with pytest.raises(ConcurrencyConflict):
        async with uow() as work:
            await work.waitings.save(two, WaitingStatus.WAITING)
            await work.commit()
    async with uow() as work:
        kept = await work.waitings.get(two.id or 0)
    assert kept is not None and (kept.status, kept.trace_id) == (WaitingStatus.WAITING, f"trace-{store.id}-2")


async def test_the_counts_and_ranks_read_always_equal_a_recount_of_the_rows(uow: Factory) -> None:
    """Registrations and every kind of move, drawn at random: after each commit, the WAITING count
    and every rank (WAITING below a number) read from the repository equal a count of its rows.
    Batches large enough that the day spans several of the rank tree's blocks of places."""
    store, draw = await _store(uow), random.Random(20261126)
    registered = 0
    for step in range(40):
        if step % 3 == 0 or registered == 0:
            batch = draw.randint(1, 30)
            await _register(uow, store, *range(registered + 1, registered + batch + 1))
            registered += batch
            continue
        async with uow() as work:
            moving = [w for w in await work.waitings.of_store(store.id, DAY) if not w.status.terminal]
            if not moving:
                continue
            waiting = draw.choice(moving)
            was = waiting.status
            move = draw.choice(["call", "seat", "cancel", "mark_no_show"] if was.active else ["cancel"])
            if was is WaitingStatus.WAITING and move in ("seat", "mark_no_show"):
                move = "call"
            elif was is WaitingStatus.CALLED and move == "call":
                move = "seat"
            if move == "cancel":
                waiting.cancel(NOW, draw.choice(list(Canceller)))
            else:
                getattr(waiting, move)(NOW)
            await work.waitings.save(waiting, was)
            await work.commit()
        async with uow() as work:
            rows = await work.waitings.of_store(store.id, DAY)
            waiting_numbers = [w.number for w in rows if w.status is WaitingStatus.WAITING]
            assert await work.waitings.count_waiting(store.id, DAY) == len(waiting_numbers)
            for below in range(1, registered + 2):
                counted = sum(1 for n in waiting_numbers if n < below)
                assert await work.waitings.count_waiting(store.id, DAY, below=below) == counted, (step, below)
            day = await work.waitings.load_list(store, DAY, [])
            assert (day.active_count, day.waiting_count) == (
                sum(1 for w in rows if w.status.active),
                len(waiting_numbers),
            )


async def test_the_store_tools_settings_are_kept(uow: Factory) -> None:
    store = await _store(
        uow,
        notify_at_rank=None,
        max_postpones=3,
        day_starts_at=time(4, 30),
        webhook_url="https://hooks.example.com/w",
        webhook_secret="s3cret",
    )
    store.pause(45, NOW)
    async with uow() as work:
        assert await work.stores.get(store.id) != store
        await work.stores.save(store)
        await work.commit()
    async with uow() as work:
        kept = await work.stores.get(store.id)
    assert kept == store
    assert kept is not None and kept.paused_until == NOW + timedelta(minutes=45)


async def test_who_cancelled_is_kept(uow: Factory) -> None:
    store = await _store(uow)
    await _register(uow, store, 1, 2)
    async with uow() as work:
        one, two = await work.waitings.of_store(store.id, DAY)
        one.cancel(NOW, Canceller.CUSTOMER)
        two.cancel(NOW, Canceller.STORE)
        for waiting in (one, two):
            await work.waitings.save(waiting, WaitingStatus.WAITING)
        await work.commit()
    async with uow() as work:
        kept = await work.waitings.of_store(store.id, DAY)
    assert [w.cancelled_by for w in kept] == [Canceller.CUSTOMER, Canceller.STORE]


async def test_the_last_calls_of_a_day_latest_first(uow: Factory) -> None:
    store, other = await _store(uow), await _store(uow)
    await _register(uow, store, 1, 2, 3, 4)
    await _register(uow, other, 1)
    async with uow() as work:
        waitings = await work.waitings.of_store(store.id, DAY)
        for minutes, waiting in zip((5, 1, 3), waitings, strict=False):  # number 4 is never called
            waiting.call(NOW + timedelta(minutes=minutes))
            await work.waitings.save(waiting, WaitingStatus.WAITING)
        [elsewhere] = await work.waitings.of_store(other.id, DAY)
        elsewhere.call(NOW + timedelta(minutes=9))
        await work.waitings.save(elsewhere, WaitingStatus.WAITING)
        await work.commit()
    async with uow() as work:
        seated = (await work.waitings.of_store(store.id, DAY))[0]
        seated.seat(NOW + timedelta(minutes=6))  # seated since: still a call of the day
        await work.waitings.save(seated, WaitingStatus.CALLED)
        await work.commit()
    async with uow() as work:
        latest = await work.waitings.last_calls(store.id, DAY, 10)
        two = await work.waitings.last_calls(store.id, DAY, 2)
        none = await work.waitings.last_calls(store.id, DAY + timedelta(days=1), 10)
    assert latest == [NOW + timedelta(minutes=m) for m in (5, 3, 1)]
    assert two == latest[:2]
    assert none == []


async def test_places_are_kept_and_a_stale_place_is_refused(uow: Factory) -> None:
    """Two postpones racing over the same entries: the second finds a place moved and is refused."""
    store = await _store(uow)
    await _register(uow, store, 1, 2, 3)
    async with uow() as work:
        one, two, three = await work.waitings.of_store(store.id, DAY)
        one.place, two.place = 2, 1
        one.postpones = 1
        await work.waitings.save(two, WaitingStatus.WAITING, was_at=2)
        await work.waitings.save(one, WaitingStatus.WAITING, was_at=1)
        await work.commit()
    async with uow() as work:
        in_order = await work.waitings.of_store(store.id, DAY)
        after_first = await work.waitings.of_store(store.id, DAY, after=1)
        ahead_of_one = await work.waitings.count_waiting(store.id, DAY, below=2)
    assert [(w.number, w.place, w.postpones) for w in in_order] == [(2, 1, 0), (1, 2, 1), (3, 3, 0)]
    assert [w.number for w in after_first] == [1, 3]
    assert ahead_of_one == 1
    three.place = 2
    with pytest.raises(ConcurrencyConflict):  # saved as if read at place 1: it was at 3
        async with uow() as work:
            await work.waitings.save(three, WaitingStatus.WAITING, was_at=1)
            await work.commit()
    async with uow() as work:
        assert [w.place for w in await work.waitings.of_store(store.id, DAY)] == [1, 2, 3]
