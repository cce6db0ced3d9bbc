"""Queued requests' statuses in process memory, with wake-ups for those waiting on an outcome."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Sequence

from application.requests import RequestStatus


class LocalRequestStatuses:
    """Keeps the newest `capacity` statuses; older decided ones remain in the request log."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._statuses: OrderedDict[str, RequestStatus] = OrderedDict()
        self._ended: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}

    async def put(self, status: RequestStatus) -> None:
        self._put(status)

    async def put_all(self, statuses: Sequence[RequestStatus]) -> None:
        for status in statuses:  # a batch's thousand: no coroutine each
            self._put(status)

    def _put(self, status: RequestStatus) -> None:
        known = self._statuses.get(status.trace_id)
        # A decision is final; short of one, the newest word wins (a replay may queue a failed one).
        if known is not None and known.decided and not status.decided:
            return
        self._statuses[status.trace_id] = status
        self._statuses.move_to_end(status.trace_id)
        while len(self._statuses) > self._capacity:
            self._statuses.popitem(last=False)
        if status.ended and (event := self._ended.pop(status.trace_id, None)):
            event.set()

    async def get(self, trace_id: str) -> RequestStatus | None:
        return self._statuses.get(trace_id)

    async def wait_decided(self, trace_id: str, within: float) -> RequestStatus | None:
        """Also wakes on a failure: nothing more happens to the request until an operator acts."""
        status = self._statuses.get(trace_id)
        if status is not None and status.ended:
            return status
        event = self._ended.setdefault(trace_id, asyncio.Event())
        self._waiting[trace_id] = self._waiting.get(trace_id, 0) + 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), within)
        finally:
            # The last one to stop waiting takes the wake-up away: nothing is kept for nobody.
            self._waiting[trace_id] -= 1
            if not self._waiting[trace_id]:
                del self._waiting[trace_id]
                self._ended.pop(trace_id, None)
        return self._statuses.get(trace_id)

    async def forget(self, trace_id: str) -> None:
        """Drop a status not decided yet; a decided one stays (a worker may have been quicker)."""
        known = self._statuses.get(trace_id)
        if known is not None and not known.decided:
            del self._statuses[trace_id]
