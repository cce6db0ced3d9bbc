"""Live events are told after the change is committed: when they cannot be sent, the change still
stands and its caller is answered as if they had been (a 503 would say "not taken")."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Self

import pytest

from adapters.notify.local import LocalNotifier
from adapters.persistence.memory import MemoryUnitOfWork
from application.announcements import Announcer
from application.getting_close import GettingClose
from application.waiting_actions import MoveWaiting
from unit.application.test_close_alerts import CloseService
from unit.helpers import Service, customer, event_types, published, staff, user_request


class NotifierAway(LocalNotifier):
    """Redis gone between the commit and the events."""

    async def publish(self, stream: str, event_type: str, data: Mapping[str, Any]) -> None:
        raise ConnectionError("Connection closed by server.")

    async def publish_all(self, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        raise ConnectionError("Connection closed by server.")


async def test_a_registration_and_a_move_stand_and_are_answered_when_their_events_cannot_be_sent() -> None:
    service = Service(notifier=NotifierAway())
    store = await service.add_store()

    first = await service.register(user_request(store.id, "u1"))
    second = await service.register(user_request(store.id, "u2"))
    called = await service.move.by_store(staff(store.id), store.id, first["id"], "call")

    assert (first["number"], second["number"], called["status"]) == (1, 2, "CALLED")
    assert service.waiting_numbers(store.id) == [1, 2]


async def test_events_not_sent_are_logged_with_what_they_told_and_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = Service(notifier=NotifierAway())
    store = await service.add_store()

    with caplog.at_level(logging.WARNING, logger="application.announcements"):
        first = await service.register(user_request(store.id, "u1"))
        await service.register(user_request(store.id, "u2"))
        await service.move.postpone(customer("u1"), first["id"], 1)
        await service.move.by_store(staff(store.id), store.id, first["id"], "call")
        await service.switch(staff(store.id), store.id, open_=False)

    why = "ConnectionError('Connection closed by server.')"
    assert [record.getMessage() for record in caplog.records] == [
        f"live events not sent (registered): {why}",
        f"live events not sent (registered): {why}",
        f"live events not sent (postponed): {why}",
        f"live events not sent (moved): {why}",
        f"live events not sent (store_changed): {why}",
    ]


async def test_a_getting_close_that_cannot_be_decided_is_logged_and_the_ranks_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = CloseService()
    store = await service.add_store(notify_at_rank=1)
    first, second = [await service.register(user_request(store.id, user)) for user in ("u1", "u2")]

    class Away(MemoryUnitOfWork):
        async def __aenter__(self) -> Self:
            raise ConnectionError("database away")

    away = GettingClose(lambda: Away(service.db), service.clock, lambda: None)
    move = MoveWaiting(
        service.uow_factory, service.clock, Announcer(service.notifier, service.uow_factory, away)
    )

    with caplog.at_level(logging.WARNING, logger="application.announcements"):
        await move.by_store(staff(store.id), store.id, first["id"], "call")

    assert await event_types(service.notifier, f"waiting:{second['id']}") == ["rank"]
    assert [record.getMessage() for record in caplog.records] == [
        "getting close not decided: ConnectionError('database away')"
    ]


async def test_a_move_tells_the_waitings_stream_and_its_stores_stream_what_the_waiting_is_now() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await service.register(user_request(store.id, "u1"))

    called = await service.move.by_store(staff(store.id), store.id, waiting["id"], "call")

    [on_its_own] = await published(service.notifier, f"waiting:{waiting['id']}")
    on_the_stores = (await published(service.notifier, f"store:{store.id}"))[-1]
    assert (on_its_own.type, dict(on_its_own.data)) == ("called", called)
    assert (on_the_stores.type, dict(on_the_stores.data)) == ("called", called)
