"""The registration queue on Kafka: API.md's topics, and the API's side of them (the producer).

A request is written with key = storeId, so one store's requests share a partition and keep
their order; the 202 leaves only after the broker acknowledged the write (acks=all).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from adapters.queue.codec import encode
from adapters.queue.pending import RedisPendingRequests
from application.ports import QueueUnavailable
from application.requests import RegistrationRequest

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str
    topic: str = "waiting-registration-request"
    dead_letter_topic: str = "waiting-registration-dlq"
    group: str = "waiting-registration"
    idempotence: bool = True
    timeout: float = 2.0
    """Seconds a write may wait for the broker's acknowledgement."""
    session_timeout: float = 10.0
    """Seconds a consumer may go silent before the group gives its partitions to others."""

    def producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=self.idempotence,
            # Without idempotence a write not acknowledged in time expires in the client; with it,
            # the client keeps trying. Either way one already sent may still land: a failed publish
            # is therefore decided as refused (SubmitRegistration), so that a late one changes nothing.
            request_timeout_ms=int(self.timeout * 1000),
            retry_backoff_ms=100,
            linger_ms=0,
        )


def store_key(store_id: int) -> bytes:
    return str(store_id).encode()


def trace_header(trace_id: str) -> Headers:
    return [("trace-id", trace_id.encode())]


def header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


class StartedProducer:
    """A producer started on first use and again after a failed start: the API serves V2 and
    reads while the broker is away, and V3 answers 503 until it is back."""

    def __init__(self, config: KafkaConfig) -> None:
        self._config = config
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def get(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                producer = self._config.producer()
                try:
                    async with asyncio.timeout(self._config.timeout):
                        await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def close(self) -> None:
        """Send what is buffered, for a while: a broker that is away must not hold up a shutdown."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                async with asyncio.timeout(self._config.timeout * 2):
                    await producer.stop()
            except TimeoutError:
                log.warning("the Kafka producer did not flush in time; its unsent writes are dropped")


class KafkaRegistrationQueue:
    """The `RegistrationQueue` port for API processes; `waitline consume` works the topic."""

    RELIST_EVERY = 1.0

    def __init__(self, config: KafkaConfig, pending: RedisPendingRequests) -> None:
        self._config, self._pending = config, pending
        self._producer = StartedProducer(config)
        self._unlisted: deque[tuple[RegistrationRequest, int]] = deque()
        self._relisting: asyncio.Task[None] | None = None

    async def publish(self, request: RegistrationRequest) -> None:
        config = self._config
        try:
            # The client's own request timeout expires the write; this bounds the rest (metadata).
            async with asyncio.timeout(config.timeout * 1.5):
                producer = await self._producer.get()
                written = await producer.send_and_wait(
                    config.topic,
                    key=store_key(request.store_id),
                    value=encode(request),
                    headers=trace_header(request.trace_id),
                )
        except (KafkaError, OSError, TimeoutError) as error:
            raise QueueUnavailable(f"the broker did not acknowledge the request: {error!r}") from error
        try:
            async with asyncio.timeout(config.timeout):
                await self._pending.add(request, position=written.offset)
        except (RedisError, OSError, TimeoutError) as error:
            # Queued for good, so accepted all the same: V3 keeps taking requests while Redis is
            # away. It is listed once Redis is back; until then this process's V2 sees it here,
            # and no V2 runs elsewhere (the stores' lock is on that Redis).
            log.warning(
                "request %s queued; listed as pending once Redis is back (%r)", request.trace_id, error
            )
            self._unlisted.append((request, written.offset))
            if self._relisting is None or self._relisting.done():
                self._relisting = asyncio.create_task(self._relist(), name="kafka-pending-relist")

    async def pending(self, store_id: int) -> list[RegistrationRequest]:
        listed = await self._pending.of_store(store_id)
        if not self._unlisted:
            return listed
        known = {request.trace_id for request in listed}
        unlisted = [r for r, _ in sorted(self._unlisted, key=lambda item: item[1]) if r.store_id == store_id]
        return listed + [request for request in unlisted if request.trace_id not in known]

    async def _relist(self) -> None:
        while self._unlisted:
            request, position = self._unlisted[0]
            try:
                async with asyncio.timeout(self._config.timeout):
                    await self._pending.add(request, position=position)
            except (RedisError, OSError, TimeoutError):
                await asyncio.sleep(self.RELIST_EVERY)
                continue
            self._unlisted.popleft()

    async def ping(self) -> None:
        """Raise unless the broker answers a metadata request now."""
        async with asyncio.timeout(self._config.timeout):
            producer = await self._producer.get()
            await producer.client.fetch_all_metadata()

    async def close(self) -> None:
        if self._relisting is not None:
            self._relisting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisting
        if self._unlisted:
            log.warning("%d queued requests were never listed as pending (Redis away)", len(self._unlisted))
        await self._producer.close()
        await self._pending.close()
