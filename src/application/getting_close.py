"""Getting close (DOMAIN.md): the first time a waiting's rank is at most its store's `notifyAtRank`,
it is told so once, and the store's webhook, if it set one, is sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from application.ports import Clock, ConcurrencyConflict, UnitOfWorkFactory
from application.webhooks import getting_close_webhook
from domain.store import Store
from domain.waiting import Waiting

# A lost race means another process marked some of them first; those it announces itself.
ATTEMPTS = 3


class GettingClose:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, webhook_queued: Callable[[], None]) -> None:
        self._uow, self._clock, self._webhook_queued = uow, clock, webhook_queued

    async def reached(self, store: Store, ranked: Sequence[tuple[Waiting, int]]) -> list[tuple[Waiting, int]]:
        """Of the waitings with their new ranks, those to tell now that their turn is close.

        Only a rank within the store's setting costs anything (nothing, for most of a busy day's
        registrations): then one transaction marks them, the mark being the database's, so each is
        told by exactly one process, and queues the store's webhooks with the marks.
        """
        limit = store.notify_at_rank
        near = {
            w.id: (w, rank) for w, rank in ranked if limit is not None and rank <= limit and w.id is not None
        }
        if not near:
            return []
        for _ in range(ATTEMPTS):
            try:
                reached = await self._mark(store, near)
                break
            except ConcurrencyConflict:
                continue
        else:
            return []
        if reached and store.webhook_url:
            self._webhook_queued()
        return reached

    async def _mark(self, store: Store, near: dict[int, tuple[Waiting, int]]) -> list[tuple[Waiting, int]]:
        now = self._clock.now()
        async with self._uow() as uow:
            marked = await uow.close_alerts.mark(near, now)
            reached = [near[waiting_id] for waiting_id in near if waiting_id in marked]
            if store.webhook_url:
                await uow.webhooks.add(
                    [getting_close_webhook(store, w, rank, now) for w, rank in reached], now
                )
            await uow.commit()
        return reached
