"""Requests counted in this process: each process has limits of its own."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from adapters.ratelimit import Hit


class LocalRateCounter:
    """A fixed window per client, opened by its first request (as Redis's counter does)."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window, self._clock = window, clock
        self._windows: dict[str, tuple[int, float]] = {}
        self._next_sweep = clock() + window

    async def hit(self, client: str) -> Hit:
        # No await in here: one event loop counts each request exactly once.
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        count, ends = self._windows.get(client, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + self._window
        self._windows[client] = count + 1, ends
        return Hit(count + 1, math.ceil((ends - now) * 1000))

    def _sweep(self, now: float) -> None:
        """Forget the clients whose window has ended, so one-off clients do not pile up."""
        self._windows = {client: kept for client, kept in self._windows.items() if kept[1] > now}
        self._next_sweep = now + self._window

    async def close(self) -> None:
        """Nothing to let go of; here to match the Redis counter."""
