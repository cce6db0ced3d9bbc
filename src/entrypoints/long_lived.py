"""What a serving process builds before its first request lives as long as the process."""

from __future__ import annotations

import gc


def keep_for_life() -> None:
    """Take what exists now (modules, the app, its routes and types) out of garbage collection.

    A full collection walks every tracked object; left in, those 160k-odd objects made each one a
    pause of about 90 ms for every request in flight (measured: one in a 1.2 s drain on PostgreSQL).
    The collection first clears whatever start-up left behind, so none of it is kept for good.
    """
    gc.collect()
    gc.freeze()
