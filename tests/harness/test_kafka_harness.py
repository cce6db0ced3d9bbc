"""The Kafka harness itself: a private Tansu broker carries keyed messages with headers through a
consumer group, refuses producers once stopped, and takes them again once started."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from harness.kafka import ENV_VAR, PrivateBroker, _free_port, create_topics, kafka_bootstrap_or_private

PARTITIONS, MESSAGES, KEYS = 4, 100, 10


async def test_a_private_broker_carries_messages_and_can_be_stopped_and_started() -> None:
    topic, group = f"harness-{uuid.uuid4().hex[:8]}", f"harness-{uuid.uuid4().hex[:8]}"
    with PrivateBroker() as broker:
        await create_topics(broker.bootstrap, [topic], PARTITIONS)
        await create_topics(broker.bootstrap, [topic], PARTITIONS)  # "already exists" is fine

        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False, request_timeout_ms=2000
        )
        await producer.start()
        try:
            sent = [
                await producer.send(
                    topic, f"{i}".encode(), key=f"key-{i % KEYS}".encode(), headers=[("seq", f"{i}".encode())]
                )
                for i in range(MESSAGES)
            ]
            await asyncio.gather(*sent)

            received = await _consume(broker.bootstrap, topic, group)
            by_key: dict[bytes, list[int]] = defaultdict(list)
            for record in received:
                assert record.key is not None and record.value is not None
                assert dict(record.headers) == {"seq": record.value}
                by_key[record.key].append(int(record.value))
            assert len(received) == MESSAGES
            assert by_key == {
                f"key-{k}".encode(): list(range(k, MESSAGES, KEYS)) for k in range(KEYS)
            }  # every key in the order it was sent

            broker.stop()
            began = time.monotonic()
            with pytest.raises(KafkaError):
                await producer.send_and_wait(topic, b"lost", key=b"key-0")
            assert time.monotonic() - began < 3.5

            broker.start()
            await create_topics(broker.bootstrap, [topic], PARTITIONS)  # memory storage lost it
            again = await producer.send_and_wait(topic, b"again", key=b"key-0")
            assert again.offset == 0  # a fresh, empty topic: nothing survives a restart
        finally:
            await producer.stop()


async def _consume(bootstrap: str, topic: str, group: str) -> list[ConsumerRecord[bytes, bytes]]:
    # request_timeout_ms stays above the ~5 s Tansu takes to answer a JoinGroup.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    await consumer.start()
    try:
        received: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 20
        while len(received) < MESSAGES and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            received.extend(record for records in batches.values() for record in records)
        await consumer.commit()
        committed = [await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)]
        assert sum(offset or 0 for offset in committed) == MESSAGES
        return received
    finally:
        await consumer.stop()


def test_a_broker_that_cannot_start_fails_with_its_log() -> None:
    with pytest.raises(RuntimeError, match=r"exited at start(.|\n)*UnsupportedStorageUrl"):
        PrivateBroker(storage="nonsense://nowhere/").__enter__()


def test_an_unreachable_shared_broker_gives_way_to_a_private_one(monkeypatch: pytest.MonkeyPatch) -> None:
    nowhere = f"127.0.0.1:{_free_port()}"
    monkeypatch.setenv(ENV_VAR, nowhere)
    with kafka_bootstrap_or_private() as bootstrap:
        assert bootstrap != nowhere
        assert bootstrap.startswith("127.0.0.1:")
