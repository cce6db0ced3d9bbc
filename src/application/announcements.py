"""What the live streams hear after a change is committed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from application.ports import Notifier, UnitOfWorkFactory
from application.views import rank_view, store_view, waiting_view
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus

log = logging.getLogger(__name__)

# The event a waiting's own stream and its store's stream carry for each transition.
EVENT_OF_ACTION = {"call": "called", "seat": "seated", "cancel": "cancelled", "no_show": "no_show"}


def store_stream(store_id: int) -> str:
    return f"store:{store_id}"


def waiting_stream(waiting_id: int) -> str:
    return f"waiting:{waiting_id}"


class Announcer:
    def __init__(self, notifier: Notifier, uow: UnitOfWorkFactory) -> None:
        self._notifier = notifier
        self._uow = uow

    async def registered(self, store: Store | None, waitings: list[tuple[Waiting, int]]) -> None:
        await _after_commit("registered", self._registered(store, waitings))

    async def _registered(self, store: Store | None, waitings: list[tuple[Waiting, int]]) -> None:
        """New waitings, each with its rank when it joined (what its own stream shows)."""
        await self._notifier.publish_all(
            [
                (store_stream(waiting.store_id), "registered", waiting_view(waiting, rank, store))
                for waiting, rank in waitings
            ]
        )

    async def store_changed(self, store: Store) -> None:
        await _after_commit("store_changed", self._store_changed(store))

    async def _store_changed(self, store: Store) -> None:
        event = "opened" if store.waiting_open else "closed"
        await self._notifier.publish(store_stream(store.id), event, store_view(store))

    async def moved(self, store: Store, waiting: Waiting, action: str, was: WaitingStatus) -> None:
        await _after_commit("moved", self._moved(store, waiting, action, was))

    async def _moved(self, store: Store, waiting: Waiting, action: str, was: WaitingStatus) -> None:
        """A waiting changed status; if it left the queue, everyone behind it moved up."""
        assert waiting.id is not None
        event, view = EVENT_OF_ACTION[action], waiting_view(waiting)
        await self._notifier.publish(waiting_stream(waiting.id), event, view)
        await self._notifier.publish(store_stream(store.id), event, view)
        if was is WaitingStatus.WAITING:
            await self._ranks_behind(store, waiting)

    async def _ranks_behind(self, store: Store, departed: Waiting) -> None:
        """Each WAITING entry behind the departed one hears its new rank: those behind are read, and
        the first one's rank is a count the storage keeps cheap (not the whole queue read)."""
        day = departed.business_date
        async with self._uow() as uow:
            behind = await uow.waitings.of_store(store.id, day, WaitingStatus.WAITING, after=departed.number)
            if not behind:
                return
            ahead = await uow.waitings.count_waiting(store.id, day, below=behind[0].number)
        await self._notifier.publish_all(
            [
                (waiting_stream(waiting.id), "rank", rank_view(ahead + place, store))
                for place, waiting in enumerate(behind, 1)
                if waiting.id is not None
            ]
        )


async def _after_commit(what: str, announcing: Awaitable[None]) -> None:
    """The change is committed by then: events that cannot be sent (Redis away, the database gone
    right after the commit) are logged, never turned into an error for a change that was made.
    (Found by the full-stack test: a V2 answered 503 although its waiting was stored.) A watcher
    misses those events until its next snapshot, when it reconnects."""
    try:
        await announcing
    except Exception as error:
        log.warning("live events not sent (%s): %r", what, error)
