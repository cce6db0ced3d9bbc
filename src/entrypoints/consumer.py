"""`waitline consume`: decide the queued V3 requests from Kafka until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal

from entrypoints.container import Container, start, stop

log = logging.getLogger(__name__)


async def consume(container: Container) -> None:
    """Runs until SIGTERM or SIGINT; the batch in hand is stored and committed before it ends."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await start(container)
        process, consumer = container.process(), container.consumer()
        log.info("consuming %s as group %s", container.kafka().topic, container.kafka().group)
        await consumer.run(process, process.give_up, stopping)
        log.info(
            "stopped: %d requests decided, %d dead letters",
            consumer.stats.decided,
            consumer.stats.dead_letters,
        )
    finally:
        await stop(container)
        await container.pending().close()
