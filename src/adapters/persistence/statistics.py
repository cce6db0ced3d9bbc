"""PostgreSQL's planner statistics, kept current while a rush grows the tables it reads.

The planner picks each plan from statistics that autovacuum refreshes only after a tenth of a
table has changed, and at most once a minute. A hot store's day is new rows under a business
date the statistics have never seen: the planner takes that day for a handful of rows and scans
it whole, for each batch, to find a few customers (measured: a drain of 10,000 requests fell from
9,300/s to 5,500/s as the day grew to 40,000 entries; analyzing as it grew kept it at 8,400-8,900).
So every `every_rows` new waitings the tables a registration reads are analyzed in the
background (a sample of each, not a scan): at most once per `at_most_every` seconds, and at most a
tenth of the time, so that on a big database, where ANALYZE takes longer, it runs less often.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

ANALYZED = ("waitings", "waiting_ranks", "registration_requests", "queued_registrations")
# ANALYZE samples the table; on a big one that can outlast the statement timeout of requests.
ANALYZE_TIMEOUT_MS = 60_000


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
            async with self._engine.begin() as connection:
                await connection.exec_driver_sql(f"SET LOCAL statement_timeout = {ANALYZE_TIMEOUT_MS}")
                await connection.exec_driver_sql(f"ANALYZE {', '.join(ANALYZED)}")
            self.runs += 1
            self._took = self._clock() - started
        except Exception as error:
            # Only the plans' quality is at stake: autovacuum will still come round.
            log.warning("the tables' statistics were not refreshed: %r", error)

    async def finished(self) -> None:
        """Once the refresh under way, if any, is over."""
        if self._analyzing is not None:
            await asyncio.gather(self._analyzing, return_exceptions=True)

    async def close(self) -> None:
        if self._analyzing is not None and not self._analyzing.done():
            self._analyzing.cancel()
            await asyncio.gather(self._analyzing, return_exceptions=True)
