"""An in-memory registration queue: partitions keyed by store, each drained in order."""

from __future__ import annotations

import asyncio
import logging

from adapters.queue.handlers import PROCESSING_ERROR, GiveUp, Handler, tell_nobody
from application.ports import QueueUnavailable
from application.requests import RegistrationRequest

log = logging.getLogger(__name__)


class LocalRegistrationQueue:
    """Like a Kafka topic keyed by store id: one store's requests stay in one partition, in order,
    and one worker per partition hands them to the handler in batches.

    A batch whose handler keeps failing is kept as a dead letter (and logged), never dropped.
    Nothing survives the process: the embedded profile uses `SqlRegistrationQueue` instead.
    """

    def __init__(self, partitions: int = 4, batch_size: int = 200, attempts: int = 5) -> None:
        self._partitions: list[asyncio.Queue[RegistrationRequest]] = [
            asyncio.Queue() for _ in range(partitions)
        ]
        self._batch_size, self._attempts = batch_size, attempts
        self._in_flight: list[list[RegistrationRequest]] = [[] for _ in range(partitions)]
        self._workers: list[asyncio.Task[None]] = []
        self._accepting = True
        self._dead_letters: list[RegistrationRequest] = []
        self._give_up: GiveUp = tell_nobody

    async def publish(self, request: RegistrationRequest) -> None:
        if not self._accepting:
            raise QueueUnavailable("the service is shutting down")
        self._partitions[request.store_id % len(self._partitions)].put_nowait(request)

    async def pending(self, store_id: int) -> list[RegistrationRequest]:
        index = store_id % len(self._partitions)
        waiting = list(self._partitions[index]._queue)  # type: ignore[attr-defined]
        return [r for r in [*self._in_flight[index], *waiting] if r.store_id == store_id]

    def depth(self) -> int:
        return sum(partition.qsize() for partition in self._partitions)

    def dead_count(self) -> int:
        return len(self._dead_letters)

    async def dead_letters(self) -> list[RegistrationRequest]:
        return list(self._dead_letters)

    def running(self) -> bool:
        return bool(self._workers) and not any(worker.done() for worker in self._workers)

    async def start(self, handler: Handler, give_up: GiveUp = tell_nobody) -> None:
        """Work the queue with `handler`; `give_up` hears of each request set aside as a dead letter."""
        self._accepting, self._give_up = True, give_up
        self._workers = [
            asyncio.create_task(self._work(index, handler)) for index in range(len(self._partitions))
        ]

    async def stop(self) -> None:
        """Stop taking requests, finish those already queued, then stop the workers."""
        self._accepting = False
        await asyncio.gather(*(partition.join() for partition in self._partitions))
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def _work(self, index: int, handler: Handler) -> None:
        partition = self._partitions[index]
        while True:
            batch = [await partition.get()]
            while len(batch) < self._batch_size and not partition.empty():
                batch.append(partition.get_nowait())
            self._in_flight[index] = batch
            try:
                await self._deliver(batch, handler)
            finally:
                self._in_flight[index] = []
                for _ in batch:
                    partition.task_done()

    async def _deliver(self, batch: list[RegistrationRequest], handler: Handler) -> None:
        """Retry a failing batch; if it keeps failing, find the request to blame, let the rest through."""
        if await self._tries(batch, handler):
            return
        blamed = batch if len(batch) == 1 else [r for r in batch if not await self._tries([r], handler)]
        if blamed:
            self._dead_letters.extend(blamed)
            await self._give_up(blamed, PROCESSING_ERROR)

    async def _tries(self, batch: list[RegistrationRequest], handler: Handler) -> bool:
        for attempt in range(1, self._attempts + 1):
            try:
                await handler(batch)
                return True
            except Exception as error:
                log.error(
                    "batch of %d failed (attempt %d of %d): %r", len(batch), attempt, self._attempts, error
                )
                await asyncio.sleep(min(0.1 * 2 ** (attempt - 1), 5.0))
        return False
