"""The Kafka queue against a real Kafka-protocol broker (Tansu) and real Redis: order, the pending
list V2 reads, dead letters with API.md's headers, replay, and waiting out a database that is away."""

from __future__ import annotations

from dataclasses import replace

from aiokafka import AIOKafkaProducer

from adapters.queue.codec import encode
from adapters.queue.handlers import PARSING_ERROR, PROCESSING_ERROR
from adapters.queue.kafka import KafkaConfig, KafkaRegistrationQueue, store_key, trace_header
from adapters.queue.kafka_dead_letters import dead_letters, replayable
from adapters.queue.pending import RedisPendingRequests
from kafka_queue.kit import Recorder, consuming, request, until


async def test_each_store_comes_out_in_publish_order_each_request_once(
    kafka: KafkaConfig, pending: RedisPendingRequests
) -> None:
    queue, recorder = KafkaRegistrationQueue(kafka, pending), Recorder()
    for n in range(150):
        for store_id in (1, 2, 3, 4, 5):
            await queue.publish(request(store_id, n))
    async with consuming(kafka, pending, recorder, recorder.give_up, batch_size=64):
        await until(lambda: len(recorder.seen) >= 750, what="every request handed over")
    await queue.close()
    for store_id in (1, 2, 3, 4, 5):
        assert recorder.of_store(store_id) == [f"{store_id}-{n}" for n in range(150)]
    assert len(recorder.seen) == 750
    assert max(len(batch) for batch in recorder.batches) > 1  # batched, not one by one


async def test_pending_lists_what_the_broker_took_until_a_consumer_decided_it(
    kafka: KafkaConfig, pending: RedisPendingRequests
) -> None:
    queue, recorder = KafkaRegistrationQueue(kafka, pending), Recorder()
    for n in range(3):
        await queue.publish(request(4, n))
        await queue.publish(request(7, n))
    assert [r.trace_id for r in await queue.pending(4)] == ["4-0", "4-1", "4-2"]
    assert [r.trace_id for r in await queue.pending(7)] == ["7-0", "7-1", "7-2"]
    async with consuming(kafka, pending, recorder, recorder.give_up):
        await until(lambda: len(recorder.seen) == 6, what="all six handed over")
        await until(lambda: _empty(queue, 4), what="store 4's list emptied")
    assert await queue.pending(7) == []
    await queue.close()


async def _empty(queue: KafkaRegistrationQueue, store_id: int) -> bool:
    return await queue.pending(store_id) == []


async def test_a_consumer_faster_than_the_api_leaves_nothing_pending(pending: RedisPendingRequests) -> None:
    """The consumer may decide a request before the API lists it: the late listing is dropped."""
    await pending.done([request(3, 0)])
    await pending.add(request(3, 0), position=0)
    await pending.add(request(3, 1), position=1)
    assert [r.trace_id for r in await pending.of_store(3)] == ["3-1"]


async def test_unreadable_records_go_to_the_dead_letters_and_the_partition_flows(
    kafka: KafkaConfig, pending: RedisPendingRequests
) -> None:
    recorder = Recorder()
    bad_channel = encode(request(9, 1)).replace(b'"USER"', b'"FAX"')
    wrong_version = encode(request(9, 2)).replace(b'"schemaVersion":1', b'"schemaVersion":7')
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for value, trace in [
            (b"{not json", "9-0"),
            (bad_channel, "9-1"),
            (wrong_version, "9-2"),
            (encode(request(9, 3)), "9-3"),
        ]:
            await producer.send_and_wait(kafka.topic, value, key=store_key(9), headers=trace_header(trace))
    finally:
        await producer.stop()
    async with consuming(kafka, pending, recorder, recorder.give_up) as consumer:
        await until(
            lambda: recorder.seen == ["9-3"] and consumer.stats.dead_letters == 3, what="3 buried, 1 decided"
        )

    letters = await dead_letters(kafka)
    assert [(letter.trace_id, letter.error_type) for letter in letters] == [
        ("9-0", PARSING_ERROR),
        ("9-1", PARSING_ERROR),
        ("9-2", PARSING_ERROR),
    ]
    first = letters[0]
    assert first.value == b"{not json"
    topic, partition, offset = first.original.split("/")
    assert (topic, int(offset)) == (kafka.topic, 0) and partition.isdigit()
    assert "schemaVersion" in letters[2].error_message
    assert replayable(letters) == []  # a parsing error stays one


async def test_a_request_that_keeps_failing_is_set_aside_failed_and_can_be_replayed(
    kafka: KafkaConfig, pending: RedisPendingRequests
) -> None:
    queue, recorder = KafkaRegistrationQueue(kafka, pending), Recorder(poison="2-1")
    for n in range(3):
        await queue.publish(request(2, n))
    async with consuming(kafka, pending, recorder, recorder.give_up, attempts=2):
        await until(lambda: recorder.given_up != [] and len(recorder.seen) == 2, what="the poison set aside")
    assert recorder.of_store(2) == ["2-0", "2-2"]
    assert recorder.given_up == [("2-1", PROCESSING_ERROR)]
    assert await queue.pending(2) == []  # set aside is not pending: V2 no longer waits for it

    letters = await dead_letters(kafka)
    assert [(letter.trace_id, letter.error_type) for letter in letters] == [("2-1", PROCESSING_ERROR)]
    assert "this request breaks the handler" in letters[0].error_message

    # The bug is fixed; the operator replays it. (A new group only to skip waiting for the broker
    # to forget the first consumer; it reads the topic from the start.)
    fixed = Recorder()
    for replayed in replayable(letters, {"2-1"}):
        await queue.publish(replayed)
    async with consuming(replace(kafka, group=f"{kafka.group}-after"), pending, fixed, fixed.give_up):
        await until(lambda: "2-1" in fixed.seen, what="the replayed request decided")
    await queue.close()


async def test_a_database_that_is_away_is_waited_for_and_nothing_is_skipped(
    kafka: KafkaConfig, pending: RedisPendingRequests
) -> None:
    queue, recorder = KafkaRegistrationQueue(kafka, pending), Recorder(away=4)
    for n in range(20):
        await queue.publish(request(6, n))
    async with consuming(kafka, pending, recorder, recorder.give_up, attempts=2) as consumer:
        await until(lambda: len(recorder.seen) == 20, what="all decided once the database is back")
    await queue.close()
    assert recorder.of_store(6) == [f"6-{n}" for n in range(20)]
    assert consumer.stats.rounds_backed_off == 4
    assert (consumer.stats.dead_letters, recorder.given_up) == (0, [])  # being away is nobody's fault


async def test_a_batch_read_again_after_an_outage_sends_no_dead_letter_twice(
    kafka: KafkaConfig, pending: RedisPendingRequests
) -> None:
    recorder = Recorder(away=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(kafka.topic, b"{not json", key=store_key(8), headers=trace_header("8-0"))
        await producer.send_and_wait(kafka.topic, encode(request(8, 1)), key=store_key(8))
    finally:
        await producer.stop()
    async with consuming(kafka, pending, recorder, recorder.give_up) as consumer:
        await until(lambda: recorder.seen == ["8-1"], what="decided once the database is back")
    assert consumer.stats.rounds_backed_off == 2
    assert [(letter.trace_id, letter.error_type) for letter in await dead_letters(kafka)] == [
        ("8-0", PARSING_ERROR)
    ]
