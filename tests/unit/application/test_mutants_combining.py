"""Combining's edges that the mutation run (scripts/mutation) found untested."""

from __future__ import annotations

import asyncio

import pytest

from application.combining import Combined


class Work:
    """Doubles each item and keeps the batches; waits for `release` while it works."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.task_names: list[str] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: str, items: list[int]) -> list[int | Exception]:
        self.batches.append(items)
        self.started.set()
        task = asyncio.current_task()
        self.task_names.append(task.get_name() if task else "")
        await self.release.wait()
        return [item * 2 for item in items]


async def test_a_batch_of_one_is_allowed_and_none_is_not() -> None:
    work = Work()
    combined = Combined(work, most=1)

    assert await asyncio.gather(*(combined("a", i) for i in range(3))) == [0, 2, 4]
    assert work.batches == [[0], [1], [2]]
    with pytest.raises(ValueError, match=r"^a batch holds at least one item$"):
        Combined(work, most=0)


async def test_a_batch_holds_200_items_by_default() -> None:
    work = Work()
    combined = Combined(work)

    await asyncio.gather(*(combined("a", i) for i in range(201)))

    assert [len(batch) for batch in work.batches] == [200, 1]


async def test_the_batch_runs_in_a_task_named_after_its_key() -> None:
    work = Work()

    await Combined(work)("store-7", 1)

    assert work.task_names == ["combined-store-7"]


async def test_work_that_answers_too_few_items_fails_its_batch_saying_so() -> None:
    async def short(key: str, items: list[int]) -> list[int | Exception]:
        return items[:1]

    combined = Combined(short)

    with pytest.raises(RuntimeError, match=r"^2 items got 1 answers$"):
        await asyncio.gather(combined("a", 1), combined("a", 2))


async def test_a_caller_gone_mid_batch_does_not_stop_the_answers_of_those_after_it() -> None:
    work = Work()
    work.release.clear()
    combined = Combined(work)
    calls = [asyncio.create_task(combined("a", i)) for i in (1, 2, 3)]
    await work.started.wait()
    assert work.batches == [[1, 2, 3]]

    calls[1].cancel()
    work.release.set()

    # Bounded, so that a batch that stops answering fails here rather than hanging.
    assert await asyncio.wait_for(calls[0], 1) == 2
    assert await asyncio.wait_for(calls[2], 1) == 6
    assert calls[1].cancelled()
