"""`waitline consume`: decide the queued V3 requests from Kafka until told to stop, and tell
Prometheus how far behind the topic it is."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.queue.kafka_consumer import KafkaRequestConsumer
from entrypoints.container import Container, start, stop
from entrypoints.long_lived import keep_for_life

log = logging.getLogger(__name__)


async def consume(container: Container) -> None:
    """Runs until SIGTERM or SIGINT; the batch in hand is stored and committed before it ends.
    Webhooks are sent from here too: those its registrations make at once, and any that fall due."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await start(container)
        process, consumer = container.process(), container.consumer()
        keep_for_life()
        container.registry().register(ConsumerCollector(consumer, container.kafka().topic))
        log.info("consuming %s as group %s", container.kafka().topic, container.kafka().group)
        webhooks = container.deliver_webhooks()
        webhooks.start()
        try:
            await consumer.run(container.registrations().decided(process), process.give_up, stopping)
        finally:
            await webhooks.stop()
        log.info(
            "stopped: %d requests decided, %d dead letters",
            consumer.stats.decided,
            consumer.stats.dead_letters,
        )
    finally:
        await stop(container)
        await container.pending().close()


class ConsumerCollector(Collector):
    """The consumer's own counts and lag, read as Prometheus scrapes (from its server's thread:
    each value is read whole, never changed in place)."""

    def __init__(self, consumer: KafkaRequestConsumer, topic: str) -> None:
        self._consumer, self._topic = consumer, topic

    def collect(self) -> Iterator[Metric]:
        stats = self._consumer.stats
        yield CounterMetricFamily(
            "waitline_consumer_decided", "Queued requests decided (their outcomes stored).", stats.decided
        )
        yield CounterMetricFamily(
            "waitline_consumer_dead_letters", "Records sent to the dead letter topic.", stats.dead_letters
        )
        yield CounterMetricFamily(
            "waitline_consumer_backoffs",
            "Batches read again later because the database or Redis was away.",
            stats.rounds_backed_off,
        )
        lag = GaugeMetricFamily(
            "waitline_consumer_lag",
            "Records of an assigned partition not yet decided (highwater minus position).",
            labels=["topic", "partition"],
        )
        for partition, behind in sorted(self._consumer.lag.items()):
            lag.add_metric([self._topic, str(partition)], behind)
        yield lag


class MetricsServer:
    """Prometheus text on host:port (any path), from a thread of its own; port 0: none.
    An OSError says the port cannot be had."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._running = start_http_server(port, host, registry) if port else None

    def close(self) -> None:
        if self._running is not None:
            server, thread = self._running
            server.shutdown()
            server.server_close()
            thread.join()
