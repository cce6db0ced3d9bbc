"""Prometheus metrics of an API process: requests by route and status, latency, open live
streams, and the state of a queue worked here. (Registrations and the lock's waits are counted
on the same registry: see entrypoints.instruments.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _QueueCollector(Collector):
    def __init__(self, depth: Callable[[], int], dead_letters: Callable[[], int]) -> None:
        self._depth, self._dead_letters = depth, dead_letters

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "waitline_queue_depth", "Registration requests queued, not yet decided.", self._depth()
        )
        yield GaugeMetricFamily(
            "waitline_queue_dead_letters",
            "Queued requests set aside after repeated failures.",
            self._dead_letters(),
        )


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        open_streams: Callable[[], int],
        depth: Callable[[], int] | None = None,
        dead_letters: Callable[[], int] | None = None,
    ) -> None:
        """`depth` and `dead_letters` come from a queue worked in this process (not Kafka's)."""
        self.registry = registry
        self.requests = Counter(
            "waitline_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "waitline_http_request_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=self.registry,
        )
        streams = Gauge(
            "waitline_sse_streams", "Live event streams (SSE) open in this process.", registry=registry
        )
        streams.set_function(open_streams)
        if depth is not None and dead_letters is not None:
            self.registry.register(_QueueCollector(depth, dead_letters))
        self._by_key: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            started, status = time.perf_counter(), 500

            async def send_and_note(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_and_note)
            finally:
                answered, took = self._series(str(scope.get("method", "")), _route(scope), status)
                answered.inc()
                took.observe(time.perf_counter() - started)

        return measured

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The request's counter and histogram, looked up once per (method, route, status):
        prometheus_client's `labels` checks and locks on every call, half of the middleware's
        cost per request. Few keys: only routes that matched get here, by their templates."""
        key = (method, route, status)
        series = self._by_key.get(key)
        if series is None:
            series = self._by_key[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        return series


def _route(scope: Any) -> str:
    return str(scope.get("path_template") or "unmatched")
