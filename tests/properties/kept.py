"""The counts and ranks storage keeps, against a recount of its rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.sql import SqlUnitOfWork
from adapters.persistence.tables import waiting_sequences
from domain.waiting import WaitingStatus


async def kept_differences(engine: AsyncEngine, store_ids: Iterable[int], days: Iterable[date]) -> list[str]:
    """Each store's day: its kept active and WAITING counts, and every WAITING entry's rank from the
    rank tree, equal to what counting the rows gives; a complaint for each that does not."""
    found: list[str] = []
    async with SqlUnitOfWork(engine) as work, engine.connect() as db:
        for store_id in store_ids:
            for day in days:
                rows = await work.waitings.of_store(store_id, day)
                kept = (
                    await db.execute(
                        select(waiting_sequences.c.active_count, waiting_sequences.c.waiting_count).where(
                            waiting_sequences.c.store_id == store_id, waiting_sequences.c.business_date == day
                        )
                    )
                ).first()
                waiting = [w.number for w in rows if w.status is WaitingStatus.WAITING]
                counted = (sum(1 for w in rows if w.status.active), len(waiting))
                if tuple(kept or (0, 0)) != counted:
                    found.append(
                        f"store {store_id} on {day} keeps (active, waiting) {tuple(kept or ())}, has {counted}"
                    )
                if await work.waitings.count_waiting(store_id, day) != len(waiting):
                    found.append(f"store {store_id} on {day}: count_waiting differs from {len(waiting)}")
                for below in [*waiting, (max(waiting) + 1 if waiting else 1)]:
                    ranked = await work.waitings.count_waiting(store_id, day, below=below)
                    if ranked != sum(1 for n in waiting if n < below):
                        found.append(
                            f"store {store_id} on {day}: {ranked} WAITING below {below}, rows say otherwise"
                        )
    return found
