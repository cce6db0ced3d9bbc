"""Combining: calls for one key that arrive while a batch for that key is being done wait, and are
done together next, each still answered on its own.

A hot store's rush then costs one lock acquisition and one transaction per batch instead of per
request, and an idle store's request is done at once (a batch of one): nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

# Each item's answer: its result, or the exception to raise to its caller alone.
Answers = Sequence[R | Exception]


class Combined(Generic[K, T, R]):
    """`await combined(key, item)` runs `work(key, items)` for a batch holding `item`.

    Items of one key are handed to `work` in the order they arrived, at most `most` at a time,
    one batch of a key at a time. `work` answers each item in order (a result, or an exception for
    that item alone); if it raises, every item of its batch gets that error and, as `work` runs
    its batch in one transaction, none of them was done. A caller cancelled before its batch
    starts is left out of it; once the batch started, the item is done (its answer is dropped).
    """

    def __init__(self, work: Callable[[K, list[T]], Awaitable[Answers[R]]], most: int = 200) -> None:
        if most < 1:
            raise ValueError("a batch holds at least one item")
        self._work, self._most = work, most
        self._waiting: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
        self._draining: dict[K, asyncio.Task[None]] = {}

    async def __call__(self, key: K, item: T) -> R:
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((item, answer))
        if key not in self._draining:
            # A task of its own: the batch must not end with the caller that happened to start it.
            self._draining[key] = asyncio.create_task(self._drain(key), name=f"combined-{key}")
        return await answer

    async def _drain(self, key: K) -> None:
        waiting = self._waiting[key]
        try:
            while waiting:
                batch = [(item, answer) for item, answer in waiting[: self._most] if not answer.done()]
                del waiting[: self._most]
                if batch:
                    await self._run(key, batch)
        finally:
            # Stopped (the service shuts down): whoever still waits is told, not left hanging.
            for _, answer in waiting:
                answer.cancel()
            del self._waiting[key], self._draining[key]

    async def _run(self, key: K, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            answers = await self._work(key, [item for item, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(batch)} items got {len(answers)} answers")
        except Exception as error:
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        except BaseException:
            for _, answer in batch:
                answer.cancel()
            raise
        for (_, answer), result in zip(batch, answers, strict=True):
            if answer.done():
                continue
            if isinstance(result, Exception):
                answer.set_exception(result)
            else:
                answer.set_result(result)
