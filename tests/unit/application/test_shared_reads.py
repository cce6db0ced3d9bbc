"""A crowd opening one store's stream shares reads of its list, never one that began before it asked."""

from __future__ import annotations

import asyncio

import pytest

from application.live import SharedReads


class Reads:
    def __init__(self) -> None:
        self.started = 0
        self.gate = asyncio.Event()

    async def __call__(self) -> dict[str, int]:
        self.started += 1
        seen = self.started
        await self.gate.wait()
        return {"read": seen}


async def test_a_crowd_costs_two_reads_and_each_read_began_after_its_callers_asked() -> None:
    shared, reads = SharedReads[int](), Reads()
    first = asyncio.create_task(shared.read(1, reads))
    await asyncio.sleep(0)  # the first read is running
    crowd = [asyncio.create_task(shared.read(1, reads)) for _ in range(100)]
    await asyncio.sleep(0.01)
    assert reads.started == 1  # the crowd waits for the next read, not this one
    reads.gate.set()
    assert (await first)["read"] == 1
    answers = await asyncio.gather(*crowd)
    assert {answer["read"] for answer in answers} == {2} and reads.started == 2


async def test_other_keys_are_read_apart() -> None:
    shared, reads = SharedReads[int](), Reads()
    reads.gate.set()
    answers = await asyncio.gather(shared.read(1, reads), shared.read(2, reads))
    assert sorted(a["read"] for a in answers) == [1, 2]


async def test_a_failed_read_fails_those_who_shared_it_and_the_next_one_is_read_again() -> None:
    shared, calls = SharedReads[int](), [0]

    async def flaky() -> dict[str, int]:
        calls[0] += 1
        if calls[0] == 1:
            raise ConnectionRefusedError("the database is away")
        return {"read": calls[0]}

    with pytest.raises(ConnectionRefusedError):
        await shared.read(1, flaky)
    assert await shared.read(1, flaky) == {"read": 2}


async def test_a_read_cancelled_from_within_cancels_those_who_shared_it_instead_of_leaving_them_hanging() -> (
    None
):
    shared = SharedReads[int]()

    async def cancelled() -> dict[str, int]:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(shared.read(1, cancelled), 1)


async def test_reads_leave_no_error_behind_for_the_event_loop() -> None:
    reported: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    shared, reads = SharedReads[int](), Reads()
    reads.gate.set()

    await asyncio.gather(*(shared.read(key, reads) for key in (1, 1, 2)))
    await asyncio.sleep(0)  # the done-callbacks of the finished reads run

    assert reported == []
