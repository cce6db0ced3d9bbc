"""The consumer's side of the Kafka queue: a partition's records handed over in batches, in order.

Nothing is dropped: a record is decided (the handler stores its outcome) or written to the dead
letter topic, and only then is its offset committed. A crash in between redelivers it, which
changes nothing (outcomes are recorded once per traceId). While the database is away the batch
is read again after a back-off: no record is skipped, and the consumer stays in its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from adapters.persistence.failures import unavailable
from adapters.queue.codec import UnreadableMessage, decode
from adapters.queue.handlers import PARSING_ERROR, PROCESSING_ERROR, GiveUp, Handler
from adapters.queue.kafka import Headers, KafkaConfig, StartedProducer, header
from adapters.queue.pending import RedisPendingRequests
from application.requests import RegistrationRequest

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord  # aiokafka is untyped: key and value are bytes here
COMMIT_WITHIN = 10.0
REBALANCE_WITHIN_MS = 60_000
BURIED_KEPT = 10_000


class Unavailable(Exception):
    """A server the batch needs is away: read the batch again later, blaming no record."""


@dataclass
class ConsumerStats:
    decided: int = 0
    dead_letters: int = 0
    rounds_backed_off: int = 0


class _FinishBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """A partition leaves only after its batch in hand is stored and committed."""

    def __init__(self, busy: asyncio.Lock) -> None:
        self._busy = busy

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._busy:
            log.info("giving up partitions %s", sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("working partitions %s", sorted(tp.partition for tp in assigned))


class KafkaRequestConsumer:
    def __init__(
        self,
        config: KafkaConfig,
        pending: RedisPendingRequests,
        batch_size: int = 500,
        attempts: int = 5,
        backoff_cap: float = 5.0,
    ) -> None:
        self._config, self._pending = config, pending
        self._batch_size, self._attempts, self._backoff_cap = batch_size, attempts, backoff_cap
        self._busy = asyncio.Lock()
        self._dead_letters = StartedProducer(config)
        self.stats = ConsumerStats()
        self._away = 0  # rounds in a row that found a server away
        # Records sent to the dead letter topic lately: a batch read again after an outage does not
        # send them twice. (Bounded: only the rounds of one batch need it.)
        self._buried: dict[tuple[TopicPartition, int], None] = {}
        self.joined = asyncio.Event()
        self.lag: dict[int, int] = {}
        """Records not yet decided, by assigned partition, as of the last round. Replaced whole,
        never changed in place: a metrics server's thread reads it."""

    async def run(self, handler: Handler, give_up: GiveUp, stopping: asyncio.Event) -> None:
        """Work the topic until `stopping` is set; the batch in hand is finished first."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._config.bootstrap,
            group_id=self._config.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._batch_size,
            session_timeout_ms=int(self._config.session_timeout * 1000),
            heartbeat_interval_ms=max(100, int(self._config.session_timeout * 1000 / 6)),
            # How long a rebalance waits for the batch in hand (aiokafka's default: the session
            # timeout, shorter than a batch that waits for a busy store's lock).
            rebalance_timeout_ms=REBALANCE_WITHIN_MS,
        )
        consumer.subscribe([self._config.topic], listener=_FinishBeforeRevoke(self._busy))
        try:
            await consumer.start()
            while not stopping.is_set():
                records = await consumer.getmany(timeout_ms=500, max_records=self._batch_size)
                if consumer.assignment():
                    self.joined.set()
                async with self._busy, asyncio.TaskGroup() as partitions:
                    for tp, batch in records.items():
                        partitions.create_task(self._partition(consumer, tp, batch, handler, give_up))
                await self._measure_lag(consumer)
        finally:
            await consumer.stop()
            await self._dead_letters.close()

    async def _partition(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[Record],
        handler: Handler,
        give_up: GiveUp,
    ) -> None:
        try:
            await self._work(tp, records, handler, give_up)
        except Exception as error:
            if not isinstance(error, Unavailable) and not unavailable(error):
                raise
            self._away += 1
            self.stats.rounds_backed_off += 1
            log.warning("partition %d: %s; reading it again shortly", tp.partition, error)
            await self._seek(consumer, tp, records[0].offset)
            await asyncio.sleep(self._backoff(self._away))
            return
        self._away = 0
        try:
            # A broker that went away leaves a commit retrying forever: its records are stored,
            # and whoever reads them again finds them decided.
            async with asyncio.timeout(COMMIT_WITHIN):
                await consumer.commit({tp: records[-1].offset + 1})
        except (CommitFailedError, IllegalStateError, TimeoutError) as error:
            log.warning("partition %d: offset %d not committed: %r", tp.partition, records[-1].offset, error)

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Highwater minus position, once the round's batches are decided (or sought back to):
        what this consumer still has to decide. A partition fetched from at least once has both."""
        lag = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                with contextlib.suppress(IllegalStateError):  # revoked meanwhile
                    lag[tp.partition] = max(0, highwater - await consumer.position(tp))
        self.lag = lag

    async def _seek(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        with contextlib.suppress(IllegalStateError):  # no longer ours: its next owner reads it
            consumer.seek(tp, offset)

    async def _work(
        self, tp: TopicPartition, records: list[Record], handler: Handler, give_up: GiveUp
    ) -> None:
        readable: list[tuple[Record, RegistrationRequest]] = []
        for record in records:
            if (tp, record.offset) in self._buried:
                continue  # set aside in an earlier round of this batch, cut short by an outage
            try:
                readable.append((record, decode(record.value or b"")))
            except UnreadableMessage as error:
                log.error("record %d/%d is unreadable: %s", tp.partition, record.offset, error)
                await self._bury(record, PARSING_ERROR, str(error))
        if not readable:
            return
        if await self._tries([request for _, request in readable], handler) is None:
            return
        # The batch keeps failing: find the request to blame, and let the others through.
        for record, request in readable:
            if (failure := await self._tries([request], handler)) is not None:
                await self._bury(record, PROCESSING_ERROR, failure, request)
                await give_up([request], PROCESSING_ERROR)

    async def _tries(self, batch: list[RegistrationRequest], handler: Handler) -> str | None:
        """None once the handler took the batch, else the last failure."""
        failure = None
        for attempt in range(1, self._attempts + 1):
            try:
                await handler(batch)
            except Exception as error:
                if unavailable(error):
                    raise Unavailable(f"{type(error).__name__}: {error}") from error
                failure = f"{type(error).__name__}: {error}"
                log.error(
                    "batch of %d failed (attempt %d of %d): %r", len(batch), attempt, self._attempts, error
                )
                if attempt < self._attempts:
                    await asyncio.sleep(self._backoff(attempt))
            else:
                self.stats.decided += len(batch)
                await self._pending.done(batch)
                return None
        return failure

    async def _bury(
        self, record: Record, error_type: str, message: str, request: RegistrationRequest | None = None
    ) -> None:
        headers: Headers = [
            ("error-type", error_type.encode()),
            ("error-message", message[:1000].encode()),
            ("original-topic", record.topic.encode()),
            ("original-partition", str(record.partition).encode()),
            ("original-offset", str(record.offset).encode()),
        ]
        trace_id = request.trace_id if request else header(record.headers, "trace-id")
        if trace_id:
            headers.append(("trace-id", trace_id.encode()))
        try:
            async with asyncio.timeout(self._config.timeout * 1.5):
                producer = await self._dead_letters.get()
                await producer.send_and_wait(
                    self._config.dead_letter_topic, key=record.key, value=record.value or b"", headers=headers
                )
        except (KafkaError, OSError, TimeoutError) as error:
            raise Unavailable(f"the dead letter topic: {error!r}") from error
        self.stats.dead_letters += 1
        self._buried[TopicPartition(record.topic, record.partition), record.offset] = None
        if len(self._buried) > BURIED_KEPT:
            del self._buried[next(iter(self._buried))]
        if request is not None:
            await self._pending.done([request])

    def _backoff(self, attempt: int) -> float:
        return float(min(0.1 * 2 ** (attempt - 1), self._backoff_cap))
