"""What the live streams hear after a change is committed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from application.pace import history_minutes
from application.ports import Notifier, UnitOfWorkFactory
from application.views import View, rank_view, store_view, waiting_view, waiting_views
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus

if TYPE_CHECKING:
    from application.getting_close import GettingClose

log = logging.getLogger(__name__)

# An event for a stream: (stream, event type, data).
Announcement = tuple[str, str, View]
# What a waiting's `rank` and `getting_close` events carry.
RANK_FIELDS = ("rank", "estimatedWaitMinutes")

# The event a waiting's own stream and its store's stream carry for each transition.
EVENT_OF_ACTION = {"call": "called", "seat": "seated", "cancel": "cancelled", "no_show": "no_show"}


def store_stream(store_id: int) -> str:
    return f"store:{store_id}"


def waiting_stream(waiting_id: int) -> str:
    return f"waiting:{waiting_id}"


class Announcer:
    def __init__(
        self, notifier: Notifier, uow: UnitOfWorkFactory, getting_close: GettingClose | None = None
    ) -> None:
        """Without `getting_close`, no waiting is told its turn is getting close."""
        self._notifier = notifier
        self._uow = uow
        self._getting_close = getting_close

    async def registered(
        self, store: Store | None, waitings: list[tuple[Waiting, int]], history: float | None = None
    ) -> None:
        """`history`: the day's pace of calls, for the estimates (`domain.estimates`)."""
        await _after_commit("registered", self._registered(store, waitings, history))

    async def _registered(
        self, store: Store | None, waitings: list[tuple[Waiting, int]], history: float | None
    ) -> None:
        """New waitings, each with its rank when it joined (what its own stream shows)."""
        views = waiting_views(waitings, store, history)
        close: list[Announcement] = []
        if store is not None:
            by_id = {waiting.id: view for (waiting, _), view in zip(waitings, views, strict=True)}
            close = await self._getting_close_of(
                store, waitings, lambda waiting_id: {key: by_id[waiting_id][key] for key in RANK_FIELDS}
            )
        await self._notifier.publish_all(
            [
                (store_stream(waiting.store_id), "registered", view)
                for (waiting, _), view in zip(waitings, views, strict=True)
            ]
            + close
        )

    async def store_changed(self, store: Store, event: str, now: datetime) -> None:
        """The store was opened, closed, paused or its settings `updated`."""
        await _after_commit(
            "store_changed", self._notifier.publish(store_stream(store.id), event, store_view(store, now))
        )

    async def postponed(self, store: Store, ranked: list[tuple[Waiting, int]], history: float | None) -> None:
        """A waiting stepped back (the last of `ranked`) past the others, each with its new rank."""
        await _after_commit("postponed", self._postponed(store, ranked, history))

    async def _postponed(
        self, store: Store, ranked: list[tuple[Waiting, int]], history: float | None
    ) -> None:
        mover, rank = ranked[-1]
        ranks = {w.id: rank_view(place, store, history) for w, place in ranked if w.id is not None}
        # Those passed moved up: one of them may have reached the store's notifyAtRank.
        close = await self._getting_close_of(store, ranked[:-1], ranks.__getitem__)
        events: list[Announcement] = [(waiting_stream(w_id), "rank", view) for w_id, view in ranks.items()]
        events.append((store_stream(store.id), "postponed", waiting_view(mover, rank, store, history)))
        await self._notifier.publish_all(events + close)

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
            behind = await uow.waitings.of_store(store.id, day, WaitingStatus.WAITING, after=departed.place)
            if not behind:
                return
            ahead = await uow.waitings.count_waiting(store.id, day, below=behind[0].place)
            history = await history_minutes(uow, store.id, day)
        ranked = [(waiting, ahead + place) for place, waiting in enumerate(behind, 1)]
        ranks = {
            waiting.id: rank_view(rank, store, history) for waiting, rank in ranked if waiting.id is not None
        }
        close = await self._getting_close_of(store, ranked, ranks.__getitem__)
        await self._notifier.publish_all(
            [(waiting_stream(waiting_id), "rank", view) for waiting_id, view in ranks.items()] + close
        )

    async def _getting_close_of(
        self, store: Store, ranked: Sequence[tuple[Waiting, int]], rank_of: Callable[[int], View]
    ) -> list[Announcement]:
        """`getting_close` for the waitings whose new rank reached the store's `notifyAtRank` for
        the first time, with the data of their `rank` event (`rank_of` a waiting id: asked only of
        those, a handful of a batch). Their marks and webhooks are stored before any event is sent;
        stored or not, the other events still go."""
        if self._getting_close is None:
            return []
        try:
            reached = await self._getting_close.reached(store, ranked)
        except Exception as error:
            log.warning("getting close not decided: %r", error)
            return []
        return [
            (waiting_stream(waiting.id), "getting_close", rank_of(waiting.id))
            for waiting, _ in reached
            if waiting.id is not None
        ]


async def _after_commit(what: str, announcing: Awaitable[None]) -> None:
    """The change is committed by then: events that cannot be sent (Redis away, the database gone
    right after the commit) are logged, never turned into an error for a change that was made.
    (Found by the full-stack test: a V2 answered 503 although its waiting was stored.) A watcher
    misses those events until its next snapshot, when it reconnects."""
    try:
        await announcing
    except Exception as error:
        log.warning("live events not sent (%s): %r", what, error)
