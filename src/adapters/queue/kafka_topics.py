"""Creating the queue's topics: run by an operator (or a one-shot job) before the first start."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from adapters.queue.kafka import KafkaConfig


async def create_topics(config: KafkaConfig, partitions: int, replication: int) -> dict[str, str]:
    """Each topic's fate, "created" or "exists"; any other refusal raises the broker's error.

    The dead letter topic gets as many partitions: a replay keeps a store's letters in order.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        names = [config.topic, config.dead_letter_topic]
        answer = await admin.create_topics([NewTopic(name, partitions, replication) for name in names])
    finally:
        await admin.close()
    fates = {}
    for name, code, message in (error[:3] for error in answer.topic_errors):
        if code == 0:
            fates[name] = "created"
        elif for_code(code) is TopicAlreadyExistsError:
            fates[name] = "exists"
        else:
            raise for_code(code)(f"{name}: {message}")
    return fates
