"""PostgreSQL's planner statistics, kept current while a rush grows the tables it reads.

The planner picks each plan from statistics that autovacuum refreshes only after a tenth of a
table has changed, and at most once a minute. A hot store's day is new rows under a business
date the statistics have never seen: the planner takes that day for a handful of rows and scans
it whole, for each batch, to find a few customers (measured: a drain of 10,000 requests fell from
9,300/s to 5,500/s as the day grew to 40,000 entries; analyzing as it grew kept it at 8,400-8,900).
So every `every_rows` new waitings the tables a registration reads are analyzed in the background
(a sample of each, not a scan): at most once per `at_most_every` seconds, and at most a tenth of the
time, so that on a big database, where ANALYZE takes longer, it runs less often.

Each table is analyzed in a transaction of its own with SKIP_LOCKED: it never waits for a lock,
so it never holds one that a migration or autovacuum would queue behind. It takes the tables'
owner (the user that ran `waitline migrate`); any other user's ANALYZE is skipped by PostgreSQL
with a warning, and autovacuum alone keeps the statistics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

ANALYZED = ("waitings", "waiting_ranks", "registration_requests", "queued_registrations")
# ANALYZE samples a table; on a big one that can outlast the timeouts of requests' statements.
ANALYZE_TIMEOUT = 60.0


class FreshStatistics:
    def __init__(
        self,
        engine: AsyncEngine,
        every_rows: int = 5_000,
        at_most_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine, self._every, self._interval, self._clock = engine, every_rows, at_most_every, clock
        self._enabled = engine.dialect.name == "postgresql" and every_rows > 0
        self._grown, self._last, self._took = 0, float("-inf"), 0.0
        self._analyzing: asyncio.Task[None] | None = None
        self.runs = 0

    def grew(self, rows: int) -> None:
        """`rows` new waitings were written (committed or about to be)."""
        if not self._enabled:
            return
        self._grown += rows
        if self._grown < self._every or self._clock() - self._last < max(self._interval, 10 * self._took):
            return
        if self._analyzing is not None and not self._analyzing.done():
            return
        self._grown, self._last = 0, self._clock()
        self._analyzing = asyncio.create_task(self._analyze())

    async def _analyze(self) -> None:
        started = self._clock()
        try:
            async with self._engine.connect() as connection:
                raw = (await connection.get_raw_connection()).driver_connection
                assert raw is not None
                try:
                    for table in ANALYZED:
                        async with raw.transaction():
                            # The server's own limit too: the pool's connections carry the requests'.
                            await raw.execute(
                                f"SET LOCAL statement_timeout = {round(ANALYZE_TIMEOUT * 1000)}"
                            )
                            await raw.execute(f"ANALYZE (SKIP_LOCKED) {table}", timeout=ANALYZE_TIMEOUT)
                except BaseException:
                    await connection.invalidate()  # cancelled or timed out mid-statement: not pooled again
                    raise
            self.runs += 1
        except Exception as error:
            # Only the plans' quality is at stake: autovacuum will still come round.
            log.warning("the tables' statistics were not refreshed: %r", error)
        finally:
            self._took = self._clock() - started

    async def finished(self) -> None:
        """Once the refresh under way, if any, is over."""
        if self._analyzing is not None:
            await asyncio.gather(self._analyzing, return_exceptions=True)

    async def close(self) -> None:
        if self._analyzing is not None and not self._analyzing.done():
            self._analyzing.cancel()
            await asyncio.gather(self._analyzing, return_exceptions=True)
