"""One contract for the registration queue, run against every implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest

from adapters.queue.local import LocalRegistrationQueue
from application.ports import QueueUnavailable
from application.requests import RegistrationRequest
from domain.customer import Channel


def _request(store_id: int, n: int) -> RegistrationRequest:
    return RegistrationRequest(
        trace_id=f"{store_id}-{n}",
        store_id=store_id,
        channel=Channel.USER,
        party_size=2,
        requested_at=datetime(2026, 11, 25, tzinfo=UTC),
        user_id=str(n),
    )


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[str]] = []
        self.failures = failures

    async def __call__(self, batch: Sequence[RegistrationRequest]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the store is down")
        self.batches.append([request.trace_id for request in batch])

    def of_store(self, store_id: int) -> list[str]:
        return [t for batch in self.batches for t in batch if t.startswith(f"{store_id}-")]


@pytest.fixture(params=["local"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[LocalRegistrationQueue]:
    yield LocalRegistrationQueue(partitions=3, batch_size=10)


async def test_each_store_is_delivered_in_publish_order(queue: LocalRegistrationQueue) -> None:
    recorder = Recorder()
    queue.start(recorder)
    for n in range(40):
        for store_id in (1, 2, 3, 4):
            await queue.publish(_request(store_id, n))
    await queue.stop()
    for store_id in (1, 2, 3, 4):
        assert recorder.of_store(store_id) == [f"{store_id}-{n}" for n in range(40)]


async def test_requests_arrive_in_batches(queue: LocalRegistrationQueue) -> None:
    for n in range(25):
        await queue.publish(_request(3, n))
    recorder = Recorder()
    queue.start(recorder)
    await queue.stop()
    assert [len(batch) for batch in recorder.batches] == [10, 10, 5]


async def test_stop_finishes_what_was_queued_then_refuses(queue: LocalRegistrationQueue) -> None:
    recorder = Recorder()
    queue.start(recorder)
    for n in range(5):
        await queue.publish(_request(1, n))
    await queue.stop()
    assert len(recorder.of_store(1)) == 5
    with pytest.raises(QueueUnavailable):
        await queue.publish(_request(1, 99))


async def test_a_failing_batch_is_retried_not_lost(queue: LocalRegistrationQueue) -> None:
    recorder = Recorder(failures=2)
    queue.start(recorder)
    await queue.publish(_request(1, 0))
    await asyncio.wait_for(queue.stop(), timeout=5)
    assert recorder.of_store(1) == ["1-0"]


async def test_a_batch_that_keeps_failing_is_set_aside() -> None:
    queue = LocalRegistrationQueue(partitions=1, attempts=2)
    queue.start(Recorder(failures=100))
    await queue.publish(_request(1, 0))
    await asyncio.wait_for(queue.stop(), timeout=5)
    assert [r.trace_id for r in queue.dead_letters] == ["1-0"]
