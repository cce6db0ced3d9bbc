"""Combining: calls for one key that meet are done as one batch, each still answered on its own."""

from __future__ import annotations

import asyncio

import pytest

from application.combining import Combined
from domain.errors import AlreadyWaiting
from unit.helpers import Service, user_request


async def ticks(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


class Work:
    """Doubles each item; refuses negative ones alone; fails the whole batch on 13. Keeps the batches."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: str, items: list[int]) -> list[int | Exception]:
        self.batches.append((key, items))
        await self.release.wait()
        if 13 in items:
            raise RuntimeError("the batch failed")
        return [ValueError(f"{item} refused") if item < 0 else item * 2 for item in items]


async def test_an_idle_key_is_done_at_once_in_a_batch_of_one() -> None:
    work = Work()
    combined = Combined(work)
    assert await combined("a", 1) == 2
    assert work.batches == [("a", [1])]


async def test_calls_that_arrive_while_a_batch_runs_are_done_together_next_in_arrival_order() -> None:
    work = Work()
    work.release.clear()
    combined = Combined(work)
    first = asyncio.create_task(combined("a", 0))
    await asyncio.sleep(0)  # the first batch has begun, and waits
    rest = [asyncio.create_task(combined("a", n)) for n in range(1, 6)]
    await asyncio.sleep(0)
    work.release.set()
    assert [await call for call in [first, *rest]] == [0, 2, 4, 6, 8, 10]
    assert work.batches == [("a", [0]), ("a", [1, 2, 3, 4, 5])]


async def test_a_batch_holds_at_most_most_items() -> None:
    work = Work()
    combined = Combined(work, most=2)
    assert await asyncio.gather(*(combined("a", n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert [items for _, items in work.batches] == [[0, 1], [2, 3], [4]]


async def test_keys_are_batched_apart_and_run_side_by_side() -> None:
    work = Work()
    work.release.clear()
    combined = Combined(work)
    calls = [asyncio.create_task(combined(key, n)) for n, key in enumerate("abab")]
    await ticks(2)  # the calls, then the batches
    assert sorted(work.batches) == [("a", [0, 2]), ("b", [1, 3])]  # both began before either ended
    work.release.set()
    assert await asyncio.gather(*calls) == [0, 2, 4, 6]


async def test_a_refusal_is_its_items_alone() -> None:
    combined = Combined(Work())
    answers = await asyncio.gather(*(combined("a", n) for n in (1, -1, 2)), return_exceptions=True)
    assert answers[0] == 2 and answers[2] == 4
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "-1 refused"


async def test_a_failed_batch_fails_each_of_its_items_and_the_next_batch_goes_on() -> None:
    work = Work()
    combined = Combined(work)
    failed = await asyncio.gather(*(combined("a", n) for n in (1, 13, 2)), return_exceptions=True)
    assert all(isinstance(answer, RuntimeError) for answer in failed), failed
    assert await combined("a", 3) == 6


async def test_a_caller_cancelled_before_its_batch_began_is_left_out() -> None:
    work = Work()
    work.release.clear()
    combined = Combined(work)
    first = asyncio.create_task(combined("a", 0))
    await asyncio.sleep(0)
    gone, stays = asyncio.create_task(combined("a", 1)), asyncio.create_task(combined("a", 2))
    await asyncio.sleep(0)
    gone.cancel()
    work.release.set()
    assert (await first, await stays) == (0, 4)
    assert work.batches == [("a", [0]), ("a", [2])]
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_v2_requests_that_meet_are_numbered_in_arrival_order_each_answered_with_its_own() -> None:
    service = Service()
    store = await service.add_store()
    await service.register(user_request(store.id, "already"))
    customers = [f"c{n}" for n in range(30)]
    customers.insert(10, "already")  # waiting already: refused alone, the others go on

    answers = await asyncio.gather(
        *(service.register(user_request(store.id, who)) for who in customers), return_exceptions=True
    )

    assert isinstance(answers[10], AlreadyWaiting)
    views = [answer for answer in answers if not isinstance(answer, BaseException)]
    assert [view["userId"] for view in views] == [f"c{n}" for n in range(30)]
    assert [view["number"] for view in views] == list(range(2, 32))
    assert [view["rank"] for view in views] == list(range(2, 32))
    assert len({view["id"] for view in views}) == 30
