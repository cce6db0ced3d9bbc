"""Counting each client's requests in a window of time: in this process, or on Redis for all."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hit:
    """A request counted: the client's requests in its current window, this one included, and
    the milliseconds until that window ends and the count starts again."""

    count: int
    reset_ms: int
