"""The dead letter topic, read by operators: list what was set aside, and replay it."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from adapters.queue.codec import UnreadableMessage, decode
from adapters.queue.kafka import KafkaConfig, header
from application.requests import RegistrationRequest


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    error_type: str
    error_message: str
    trace_id: str | None
    original: str
    """Where it was read from: topic/partition/offset."""
    value: bytes

    def request(self) -> RegistrationRequest | None:
        try:
            return decode(self.value)
        except UnreadableMessage:
            return None


async def dead_letters(config: KafkaConfig, idle: float = 1.0, first: float = 5.0) -> list[DeadLetter]:
    """Every record of the dead letter topic, oldest first per partition.

    Read until the topic stays quiet for `idle` seconds (`first` for the first fetch, which also
    finds the partitions' leaders), not up to the reported end offsets: some brokers report
    those wrong.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        partitions = await _partitions(consumer, config.dead_letter_topic)
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        letters: list[DeadLetter] = []
        wait = first
        while batch := await consumer.getmany(timeout_ms=int(wait * 1000)):
            wait = idle
            for records in batch.values():
                letters.extend(
                    _letter(record.partition, record.offset, record.value, record.headers)
                    for record in records
                )
        return sorted(letters, key=lambda letter: (letter.partition, letter.offset))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    if topic not in await consumer.topics():
        return []
    for _ in range(50):  # the metadata may trail the topic list for a moment
        if numbers := consumer.partitions_for_topic(topic):
            return [TopicPartition(topic, number) for number in sorted(numbers)]
        await asyncio.sleep(0.1)
    return []


def _letter(
    partition: int, offset: int, value: bytes | None, headers: Collection[tuple[str, bytes]]
) -> DeadLetter:
    found = list(headers)
    original = "/".join(
        header(found, name) or "?" for name in ("original-topic", "original-partition", "original-offset")
    )
    return DeadLetter(
        partition=partition,
        offset=offset,
        error_type=header(found, "error-type") or "?",
        error_message=header(found, "error-message") or "",
        trace_id=header(found, "trace-id"),
        original=original,
        value=value or b"",
    )


def replayable(letters: list[DeadLetter], trace_ids: Collection[str] = ()) -> list[RegistrationRequest]:
    """The requests to queue again: readable ones (a parsing error stays one), each traceId once,
    only the given traceIds if any."""
    chosen: dict[str, RegistrationRequest] = {}
    for letter in letters:
        request = letter.request()
        if request is None or (trace_ids and request.trace_id not in trace_ids):
            continue
        chosen.setdefault(request.trace_id, request)
    return list(chosen.values())
