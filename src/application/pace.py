"""The day's pace of calls, read for an estimate (DOMAIN.md, "Estimate from history")."""

from __future__ import annotations

from datetime import date

from application.ports import UnitOfWork
from domain.estimates import HISTORY_CALLS, service_minutes


async def history_minutes(uow: UnitOfWork, store_id: int, business_date: date) -> float | None:
    """Minutes per call from the day's latest calls, or None while there are too few."""
    return service_minutes(await uow.waitings.last_calls(store_id, business_date, HISTORY_CALLS))
