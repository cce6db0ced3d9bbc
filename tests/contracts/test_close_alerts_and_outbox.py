"""One contract for the getting-close marks (`CloseAlerts`) and the webhook outbox (`WebhookOutbox`),
the unit of work's repositories, run against every implementation: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

from application.ports import ConcurrencyConflict, NewWebhook, UnitOfWork, WebhookDelivery
from domain.customer import Customer
from domain.store import Store
from domain.waiting import Waiting
from domain.waiting_list import Registration

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
DAY = date(2026, 11, 25)
HOLD = timedelta(minutes=2)
SEOUL = timezone(timedelta(hours=9))
Factory = Callable[[], UnitOfWork]


async def _store(uow: Factory) -> Store:
    store = Store(id=0, name="Gamja", waiting_open=True, webhook_url="https://hooks.example.com/w")
    async with uow() as work:
        await work.stores.add(store)
        await work.commit()
    return store


async def _waitings(uow: Factory, store: Store, count: int) -> list[Waiting]:
    async with uow() as work:
        day = await work.waitings.load_list(store, DAY, [])
        waitings = [
            day.register(
                Registration(
                    f"trace-{store.id}-{n}", Customer.user(f"u{n}"), 2, f"token-{store.id}-{n}-long-enough"
                ),
                NOW,
            )
            for n in range(1, count + 1)
        ]
        await work.waitings.save_list(day)
        await work.commit()
    return waitings


def _ids(waitings: list[Waiting]) -> list[int]:
    return [w.id for w in waitings if w.id is not None]


async def _mark(uow: Factory, ids: list[int], now: datetime = NOW) -> set[int]:
    async with uow() as work:
        marked = await work.close_alerts.mark(ids, now)
        await work.commit()
    return marked


# --- getting-close marks ---------------------------------------------------------------------------


async def test_a_waiting_is_marked_once(uow: Factory) -> None:
    store = await _store(uow)
    first, second, third = _ids(await _waitings(uow, store, 3))

    assert await _mark(uow, [first, second]) == {first, second}
    assert await _mark(uow, [first, second, third], NOW + timedelta(minutes=5)) == {third}
    assert await _mark(uow, [first, second, third]) == set()
    assert await _mark(uow, []) == set()


async def test_only_a_waiting_still_waiting_is_marked(uow: Factory) -> None:
    store = await _store(uow)
    waiting, called = await _waitings(uow, store, 2)
    async with uow() as work:
        called.call(NOW)
        await work.waitings.save(called, waiting.status)
        await work.commit()

    assert await _mark(uow, [*_ids([waiting, called]), 987_654]) == set(_ids([waiting]))


async def test_a_mark_is_kept_only_with_its_commit(uow: Factory) -> None:
    store = await _store(uow)
    [waiting_id] = _ids(await _waitings(uow, store, 1))
    async with uow() as work:
        assert await work.close_alerts.mark([waiting_id], NOW) == {waiting_id}
        assert await work.close_alerts.mark([waiting_id], NOW) == set()  # its own mark, seen

    assert await _mark(uow, [waiting_id]) == {waiting_id}


async def test_two_transactions_marking_one_waiting_announce_it_once(uow: Factory) -> None:
    """Two processes see the same rank change at once: whichever commits first announces it; the
    other does not get it (it waited for the first) or cannot commit."""
    store = await _store(uow)
    waiting_ids = _ids(await _waitings(uow, store, 3))
    first_marked = asyncio.Event()

    async def announce(first: bool) -> set[int]:
        if not first:
            await first_marked.wait()
        try:
            async with uow() as work:
                marked = await work.close_alerts.mark(waiting_ids, NOW)
                if first:
                    first_marked.set()
                    await asyncio.sleep(0.2)  # the other marks meanwhile
                await work.commit()
        except ConcurrencyConflict:
            return set()
        return marked

    announced = await asyncio.gather(announce(True), announce(False))

    assert sorted(len(marked) for marked in announced) == [0, 3]


# --- the webhook outbox ----------------------------------------------------------------------------


def _webhook(store: Store, n: int) -> NewWebhook:
    return NewWebhook(store.id, "https://hooks.example.com/w", f'{{"type":"getting_close","n":{n}}}')


async def _add(uow: Factory, store: Store, *numbers: int, now: datetime = NOW) -> None:
    async with uow() as work:
        await work.webhooks.add([_webhook(store, n) for n in numbers], now)
        await work.commit()


async def _claim(uow: Factory, now: datetime = NOW, most: int = 10) -> list[WebhookDelivery]:
    async with uow() as work:
        claimed = await work.webhooks.claim(now, now + HOLD, most)
        await work.commit()
    return claimed


async def test_a_webhook_added_is_due_at_once_and_claimed_with_its_first_attempt(uow: Factory) -> None:
    store = await _store(uow)
    await _add(uow, store, 1, 2, now=NOW.astimezone(SEOUL))

    claimed = await _claim(uow)

    assert [(d.store_id, d.url, d.body, d.attempts) for d in claimed] == [
        (store.id, "https://hooks.example.com/w", '{"type":"getting_close","n":1}', 1),
        (store.id, "https://hooks.example.com/w", '{"type":"getting_close","n":2}', 1),
    ]
    assert claimed[0].id != claimed[1].id


async def test_nothing_is_due_before_it_is_added_nor_kept_without_commit(uow: Factory) -> None:
    store = await _store(uow)
    async with uow() as work:
        await work.webhooks.add([_webhook(store, 1)], NOW)
    await _add(uow, store, 2, now=NOW + timedelta(seconds=1))

    assert await _claim(uow) == []
    assert [d.body for d in await _claim(uow, NOW + timedelta(seconds=1))] == [
        '{"type":"getting_close","n":2}'
    ]


async def test_a_claim_holds_a_delivery_until_its_time_then_counts_another_attempt(uow: Factory) -> None:
    store = await _store(uow)
    await _add(uow, store, 1)
    [first] = await _claim(uow)

    assert await _claim(uow, NOW + HOLD - timedelta(seconds=1)) == []
    [again] = await _claim(uow, NOW + HOLD)  # its process died: taken again

    assert (again.id, again.attempts) == (first.id, 2)


async def test_a_claim_takes_at_most_so_many_the_soonest_due_first(uow: Factory) -> None:
    store = await _store(uow)
    await _add(uow, store, 3, now=NOW)
    await _add(uow, store, 1, now=NOW - timedelta(minutes=2))
    await _add(uow, store, 2, now=NOW - timedelta(minutes=1))

    taken = await _claim(uow, most=2)

    assert sorted(d.body for d in taken) == [
        '{"type":"getting_close","n":1}',
        '{"type":"getting_close","n":2}',
    ]
    assert [d.body for d in await _claim(uow)] == ['{"type":"getting_close","n":3}']


async def test_a_retry_is_due_again_at_its_time(uow: Factory) -> None:
    store = await _store(uow)
    await _add(uow, store, 1)
    [claimed] = await _claim(uow)
    async with uow() as work:
        await work.webhooks.retry(claimed, NOW + timedelta(seconds=30), "answered 500")
        await work.commit()

    assert await _claim(uow, NOW + timedelta(seconds=29)) == []
    [again] = await _claim(uow, NOW + timedelta(seconds=30))
    assert again.attempts == 2


async def test_a_finished_delivery_is_gone_and_one_given_up_is_never_claimed_again(uow: Factory) -> None:
    store = await _store(uow)
    await _add(uow, store, 1, 2)
    sent, failed = await _claim(uow)
    async with uow() as work:
        await work.webhooks.finish(sent)
        await work.webhooks.give_up(failed, "answered 404")
        await work.commit()

    assert await _claim(uow, NOW + timedelta(days=365)) == []


async def test_an_outcome_counts_only_while_its_attempt_holds_the_delivery(uow: Factory) -> None:
    """A process whose claim ran out (it was paused, say) reports late: another attempt took the
    delivery over meanwhile, and the late outcome changes nothing."""
    store = await _store(uow)
    await _add(uow, store, 1)
    [late] = await _claim(uow)
    [current] = await _claim(uow, NOW + HOLD)
    async with uow() as work:
        await work.webhooks.finish(late)
        await work.webhooks.give_up(late, "late")
        await work.webhooks.retry(late, NOW, "late")
        await work.commit()

    assert await _claim(uow, NOW + HOLD + timedelta(seconds=1)) == []  # still held by `current`
    async with uow() as work:
        await work.webhooks.retry(current, NOW + 2 * HOLD, "answered 503")
        await work.commit()
    [next_one] = await _claim(uow, NOW + 2 * HOLD)
    assert next_one.attempts == 3


async def test_two_workers_claiming_at_once_never_take_the_same_delivery(uow: Factory) -> None:
    store = await _store(uow)
    await _add(uow, store, *range(1, 11))
    first_claimed = asyncio.Event()

    async def worker(first: bool) -> list[int]:
        if not first:
            await first_claimed.wait()
        try:
            async with uow() as work:
                claimed = await work.webhooks.claim(NOW, NOW + HOLD, 6)
                if first:
                    first_claimed.set()
                    await asyncio.sleep(0.2)  # the other claims meanwhile
                await work.commit()
        except ConcurrencyConflict:
            return []
        return [d.id for d in claimed]

    first, second = await asyncio.gather(worker(True), worker(False))

    # The second skipped what the first holds (PostgreSQL), or waited for it (SQLite), or one of
    # the two could not commit (memory): either way no delivery is taken twice, and none is lost.
    assert not set(first) & set(second)
    assert sorted([len(first), len(second)]) in ([0, 6], [4, 6])
    leftover = [d.id for d in await _claim(uow)]
    assert sorted(first + second + leftover) == sorted(set(first + second + leftover))
    assert len(first + second + leftover) == 10
