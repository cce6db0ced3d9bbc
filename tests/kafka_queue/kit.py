"""Helpers for the Kafka tests: requests, a recording handler, a consumer run for the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

from adapters.queue.handlers import GiveUp, Handler
from adapters.queue.kafka import KafkaConfig
from adapters.queue.kafka_consumer import KafkaRequestConsumer
from adapters.queue.pending import RedisPendingRequests
from application.requests import RegistrationRequest
from domain.customer import Channel


def request(store_id: int, n: int, trace: str = "") -> RegistrationRequest:
    return RegistrationRequest(
        trace_id=trace or f"{store_id}-{n}",
        store_id=store_id,
        channel=Channel.USER,
        party_size=2,
        requested_at=datetime(2026, 11, 26, tzinfo=UTC),
        user_id=f"user-{n}",
    )


class Recorder:
    """Takes batches, failing on demand: `away` times as if the database were down, `failures`
    times as a bug would, and always for the poisoned traceId."""

    def __init__(self, *, away: int = 0, failures: int = 0, poison: str = "") -> None:
        self.batches: list[list[str]] = []
        self.given_up: list[tuple[str, str]] = []
        self.away, self.failures, self.poison = away, failures, poison

    async def __call__(self, batch: Sequence[RegistrationRequest]) -> None:
        if self.away:
            self.away -= 1
            raise ConnectionRefusedError("the database is down")
        if self.failures:
            self.failures -= 1
            raise RuntimeError("a passing bug")
        if any(r.trace_id == self.poison for r in batch):
            raise RuntimeError("this request breaks the handler")
        self.batches.append([r.trace_id for r in batch])

    async def give_up(self, requests: Sequence[RegistrationRequest], reason: str) -> None:
        self.given_up.extend((r.trace_id, reason) for r in requests)

    @property
    def seen(self) -> list[str]:
        return [trace for batch in self.batches for trace in batch]

    def of_store(self, store_id: int) -> list[str]:
        return [t for t in self.seen if t.startswith(f"{store_id}-")]


@contextlib.asynccontextmanager
async def consuming(
    kafka: KafkaConfig,
    pending: RedisPendingRequests,
    handler: Handler,
    give_up: GiveUp,
    *,
    batch_size: int = 500,
    attempts: int = 2,
) -> AsyncIterator[KafkaRequestConsumer]:
    """A consumer working the topic inside the block (its group joined before the block starts)."""
    consumer = KafkaRequestConsumer(kafka, pending, batch_size=batch_size, attempts=attempts, backoff_cap=0.2)
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run(handler, give_up, stopping))
    try:
        await until(lambda: consumer.joined.is_set() or task.done(), within=60, what="joining the group")
        if task.done():
            task.result()
        yield consumer
    finally:
        stopping.set()
        async with asyncio.timeout(30):
            await task


async def until(
    condition: Callable[[], bool | Awaitable[bool]], *, within: float = 60, what: str = ""
) -> None:
    deadline = time.monotonic() + within
    while True:
        met = condition()
        if not isinstance(met, bool):
            met = await met
        if met:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)
