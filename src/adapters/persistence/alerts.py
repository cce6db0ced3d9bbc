"""Getting-close marks and the webhook outbox (the `CloseAlerts` and `WebhookOutbox` ports), as
repositories of a unit of work: on SQLAlchemy Core (SQLite, PostgreSQL), or in memory."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.persistence.tables import waitings
from adapters.persistence.tables import webhook_deliveries as outbox
from application.ports import ConcurrencyConflict, NewWebhook, WaitingRepository, WebhookDelivery
from domain.waiting import WaitingStatus

PENDING, GIVEN_UP = "PENDING", "GIVEN_UP"
ERROR_LENGTH = 500


def _utc(moment: datetime) -> datetime:
    """SQLite keeps no offset: store UTC, and read it back as UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class SqlCloseAlerts:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def mark(self, waiting_ids: Collection[int], now: datetime) -> set[int]:
        if not waiting_ids:
            return set()
        # One statement: on PostgreSQL a concurrent marker waits for this row, then finds it set.
        statement = (
            update(waitings)
            .where(
                waitings.c.id.in_(list(waiting_ids)),
                waitings.c.status == str(WaitingStatus.WAITING),
                waitings.c.close_notified_at.is_(None),
            )
            .values(close_notified_at=_utc(now))
            .returning(waitings.c.id)
        )
        return set((await self._db.execute(statement)).scalars())


class SqlWebhookOutbox:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, webhooks: Sequence[NewWebhook], now: datetime) -> None:
        if not webhooks:
            return
        at = _utc(now)
        rows = [
            {
                "store_id": webhook.store_id,
                "url": webhook.url,
                "body": webhook.body,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
            }
            for webhook in webhooks
        ]
        await self._db.execute(insert(outbox), rows)

    async def claim(self, now: datetime, until: datetime, most: int) -> list[WebhookDelivery]:
        # PostgreSQL: workers of other processes skip the rows this one is taking (SQLite has one
        # writer at a time, and renders no FOR UPDATE).
        due = (
            select(outbox.c.id)
            .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= _utc(now))
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(most)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(outbox)
            .where(outbox.c.id.in_(due.scalar_subquery()))
            .values(attempts=outbox.c.attempts + 1, next_attempt_at=_utc(until))
            .returning(outbox.c.id, outbox.c.store_id, outbox.c.url, outbox.c.body, outbox.c.attempts)
        )
        rows = (await self._db.execute(statement)).mappings()
        return sorted((WebhookDelivery(**row) for row in rows), key=lambda delivery: delivery.id)

    async def retry(self, delivery: WebhookDelivery, at: datetime, error: str) -> None:
        await self._db.execute(
            update(outbox)
            .where(*_held_by(delivery))
            .values(next_attempt_at=_utc(at), last_error=error[:ERROR_LENGTH])
        )

    async def finish(self, delivery: WebhookDelivery) -> None:
        await self._db.execute(delete(outbox).where(*_held_by(delivery)))

    async def give_up(self, delivery: WebhookDelivery, error: str) -> None:
        await self._db.execute(
            update(outbox).where(*_held_by(delivery)).values(status=GIVEN_UP, last_error=error[:ERROR_LENGTH])
        )


def _held_by(delivery: WebhookDelivery) -> tuple[Any, ...]:
    """The row, while the attempt that claimed it is the latest (a newer one took it over)."""
    return outbox.c.id == delivery.id, outbox.c.attempts == delivery.attempts, outbox.c.status == PENDING


@dataclass
class _Row:
    delivery: WebhookDelivery
    next_attempt_at: datetime
    status: str = PENDING
    last_error: str | None = None


@dataclass
class MemoryAlertsState:
    """What a memory database keeps of the two: the marks, and the outbox's rows by id."""

    notified: dict[int, datetime] = field(default_factory=dict)
    deliveries: dict[int, _Row] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


@dataclass
class PendingAlerts:
    """One unit of work's writes, applied at its commit: marks, and rows by id (None: deleted),
    each with the attempts it was read with (None: added by this unit of work)."""

    notified: dict[int, datetime] = field(default_factory=dict)
    rows: dict[int, tuple[int | None, _Row | None]] = field(default_factory=dict)

    def check(self, state: MemoryAlertsState) -> None:
        if any(waiting_id in state.notified for waiting_id in self.notified):
            raise ConcurrencyConflict("a waiting was marked getting close concurrently")
        for delivery_id, (seen, _) in self.rows.items():
            kept = state.deliveries.get(delivery_id)
            if seen is not None and (kept is None or kept.delivery.attempts != seen):
                raise ConcurrencyConflict(f"webhook delivery {delivery_id} changed concurrently")

    def apply(self, state: MemoryAlertsState) -> None:
        state.notified.update(self.notified)
        for delivery_id, (_, row) in self.rows.items():
            if row is None:
                state.deliveries.pop(delivery_id, None)
            else:
                state.deliveries[delivery_id] = row


class MemoryCloseAlerts:
    def __init__(self, state: MemoryAlertsState, pending: PendingAlerts, waitings: WaitingRepository) -> None:
        self._state, self._pending, self._waitings = state, pending, waitings

    async def mark(self, waiting_ids: Collection[int], now: datetime) -> set[int]:
        marked = set()
        for waiting_id in waiting_ids:
            if waiting_id in self._state.notified or waiting_id in self._pending.notified:
                continue
            waiting = await self._waitings.get(waiting_id)
            if waiting is not None and waiting.status is WaitingStatus.WAITING:
                self._pending.notified[waiting_id] = now
                marked.add(waiting_id)
        return marked


class MemoryWebhookOutbox:
    def __init__(self, state: MemoryAlertsState, pending: PendingAlerts) -> None:
        self._state, self._pending = state, pending

    def _rows(self) -> dict[int, _Row]:
        rows = dict(self._state.deliveries)
        for delivery_id, (_, row) in self._pending.rows.items():
            if row is None:
                rows.pop(delivery_id, None)
            else:
                rows[delivery_id] = row
        return rows

    def _write(self, delivery_id: int, row: _Row | None) -> None:
        if delivery_id in self._pending.rows:
            seen = self._pending.rows[delivery_id][0]
        else:
            kept = self._state.deliveries.get(delivery_id)
            seen = kept.delivery.attempts if kept is not None else None
        self._pending.rows[delivery_id] = (seen, row)

    async def add(self, webhooks: Sequence[NewWebhook], now: datetime) -> None:
        for webhook in webhooks:
            delivery_id = next(self._state.ids)
            delivery = WebhookDelivery(delivery_id, webhook.store_id, webhook.url, webhook.body, attempts=0)
            self._write(delivery_id, _Row(delivery, next_attempt_at=now))

    async def claim(self, now: datetime, until: datetime, most: int) -> list[WebhookDelivery]:
        due = sorted(
            (row for row in self._rows().values() if row.status == PENDING and row.next_attempt_at <= now),
            key=lambda row: (row.next_attempt_at, row.delivery.id),
        )[:most]
        claimed = []
        for row in due:
            delivery = replace(row.delivery, attempts=row.delivery.attempts + 1)
            self._write(delivery.id, replace(row, delivery=delivery, next_attempt_at=until))
            claimed.append(delivery)
        return sorted(claimed, key=lambda delivery: delivery.id)

    async def retry(self, delivery: WebhookDelivery, at: datetime, error: str) -> None:
        if (row := self._held(delivery)) is not None:
            self._write(delivery.id, replace(row, next_attempt_at=at, last_error=error[:ERROR_LENGTH]))

    async def finish(self, delivery: WebhookDelivery) -> None:
        if self._held(delivery) is not None:
            self._write(delivery.id, None)

    async def give_up(self, delivery: WebhookDelivery, error: str) -> None:
        if (row := self._held(delivery)) is not None:
            self._write(delivery.id, replace(row, status=GIVEN_UP, last_error=error[:ERROR_LENGTH]))

    def _held(self, delivery: WebhookDelivery) -> _Row | None:
        row = self._rows().get(delivery.id)
        if row is None or row.status != PENDING or row.delivery.attempts != delivery.attempts:
            return None
        return row
