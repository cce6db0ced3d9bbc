"""Prometheus instruments the API and the consumer share, on their process's registry: what each
registration attempt was answered or decided, how long the stores' lock kept it waiting, and what
came of each webhook attempt."""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Histogram

from adapters.queue.handlers import Handler
from application.ports import Lock
from application.requests import RegistrationRequest, RequestState, RequestStatus
from application.webhooks import Outcome
from domain.customer import Channel
from domain.errors import LockTimeout

# From a free in-process lock (well under a millisecond) to V2's whole wait (5 s by default).
LOCK_WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

Decide = Callable[[Sequence[RegistrationRequest]], Awaitable[list[RequestStatus]]]


class Version(StrEnum):
    """The registration API an attempt came through."""

    V2 = "v2"
    V3 = "v3"


class Registrations:
    """`waitline_registrations_total{version, channel, outcome}`.

    Counted at the edges, never in the use cases: the API counts the answer it gives (V2:
    REGISTERED or the refusal's code; V3: QUEUED or the refusal's code), and a queue's worker
    counts each V3 decision (REGISTERED or the refusal's code). A V3 request is thus counted
    once as QUEUED and once more as decided.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counter = Counter(
            "waitline_registrations",
            "Registration attempts by API version, channel and outcome (REGISTERED, QUEUED or a refusal code).",
            ["version", "channel", "outcome"],
            registry=registry,
        )

    def count(self, version: Version, channel: Channel, outcome: str, times: int = 1) -> None:
        self._counter.labels(str(version), str(channel), outcome).inc(times)

    def decided(self, decide: Decide) -> Handler:
        """A queue worker's handler that counts the V3 decisions it hands back.

        A request redelivered after its batch was stored (a crash before the acknowledgement)
        gets its recorded outcome again, and is counted again: rare, and better than a miss.
        """

        async def counted(requests: Sequence[RegistrationRequest]) -> list[RequestStatus]:
            statuses = await decide(requests)
            outcomes = {status.trace_id: _outcome(status) for status in statuses}
            # One increment per (channel, outcome) of the batch, not one per request.
            tally = collections.Counter(
                (request.channel, outcomes[request.trace_id])
                for request in {request.trace_id: request for request in requests}.values()
            )
            for (channel, outcome), times in tally.items():
                self.count(Version.V3, channel, outcome, times)
            return statuses

        return counted


def _outcome(status: RequestStatus) -> str:
    if status.state is RequestState.REJECTED and status.reason:
        return status.reason
    return str(status.state)


class TimedLock:
    """The stores' lock, with `waitline_lock_wait_seconds{outcome}` observed around each
    acquisition: how long registrations queue for a busy store, and how often they give up."""

    def __init__(self, lock: Lock, registry: CollectorRegistry) -> None:
        self._lock = lock
        self._waits = Histogram(
            "waitline_lock_wait_seconds",
            "Time spent taking a store's lock, by outcome (acquired, timeout).",
            ["outcome"],
            buckets=LOCK_WAIT_BUCKETS,
            registry=registry,
        )
        for outcome in ("acquired", "timeout"):
            self._waits.labels(outcome)  # both series from the start: a dashboard's rate() needs them

    @contextlib.asynccontextmanager
    async def hold(self, key: str, *, wait_time: float, lease_time: float | None) -> AsyncIterator[int]:
        started = time.perf_counter()
        async with contextlib.AsyncExitStack() as held:
            try:
                fence = await held.enter_async_context(
                    self._lock.hold(key, wait_time=wait_time, lease_time=lease_time)
                )
            except LockTimeout:
                self._waits.labels("timeout").observe(time.perf_counter() - started)
                raise
            self._waits.labels("acquired").observe(time.perf_counter() - started)
            yield fence


class WebhookOutcomes:
    """`waitline_webhook_deliveries_total{outcome}`: what came of each webhook attempt, by the
    worker of this process: `delivered`, `retrying` (failed, tried again later), `given_up`
    (failed for the last time, or refused for good), `dropped` (the store no longer sends there)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counter = Counter(
            "waitline_webhook_deliveries",
            "Webhook attempts by outcome (delivered, retrying, given_up, dropped).",
            ["outcome"],
            registry=registry,
        )
        for outcome in Outcome:
            self._counter.labels(str(outcome))  # every series from the start, for rate() and alerts

    def count(self, outcome: Outcome) -> None:
        self._counter.labels(str(outcome)).inc()
