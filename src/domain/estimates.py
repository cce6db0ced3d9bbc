"""How long a newcomer waits: from the day's pace of calls once there is one, else the store's setting."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain.store import Store

# The pace is the median interval between consecutive calls, over the day's last 20 calls, once
# 5 intervals exist (DOMAIN.md, "Estimate from history").
HISTORY_CALLS = 20
LEAST_INTERVALS = 5

Source = Literal["history", "configured"]


def service_minutes(calls: Sequence[datetime]) -> float | None:
    """The median minutes between consecutive calls among the latest `HISTORY_CALLS`, or None
    while fewer than `LEAST_INTERVALS` intervals exist."""
    latest = sorted(calls)[-HISTORY_CALLS:]
    intervals = [(later - earlier).total_seconds() / 60 for earlier, later in itertools.pairwise(latest)]
    if len(intervals) < LEAST_INTERVALS:
        return None
    return statistics.median(intervals)


@dataclass(frozen=True)
class Pace:
    """Minutes per party ahead, and where that figure comes from (None: no estimate)."""

    minutes: float | None
    source: Source | None

    @classmethod
    def of(cls, store: Store, history: float | None) -> Pace:
        if history is not None:
            return cls(history, "history")
        if store.avg_service_minutes is not None:
            return cls(store.avg_service_minutes, "configured")
        return cls(None, None)

    def wait(self, rank: int) -> int | None:
        """Estimated wait of the entry at `rank`: ceil((rank − 1) × minutes)."""
        if self.minutes is None:
            return None
        # Rounded first, so that 0.1 + 0.2 minutes of float noise does not add a whole minute.
        return math.ceil(round((rank - 1) * self.minutes, 9))
