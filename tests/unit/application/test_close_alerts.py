"""Getting close (DOMAIN.md): the first time a waiting's rank is at most the store's notifyAtRank,
its stream hears `getting_close` once, and the store's webhook is queued with the mark."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Self

import pytest

from adapters.persistence.memory import MemoryUnitOfWork
from application.announcements import Announcer
from application.getting_close import GettingClose
from application.views import View
from application.waiting_actions import MoveWaiting
from unit.helpers import NOON_IN_SEOUL, Service, customer, guest_request, published, staff, user_request

HOOK = "https://hooks.example.com/waitline"


@dataclass
class CloseService(Service):
    """The use cases as the composition root wires them, getting close included."""

    webhooks_queued: int = 0

    @property
    def getting_close(self) -> GettingClose:
        return GettingClose(self.uow_factory, self.clock, self._queued)

    @property
    def announcer(self) -> Announcer:
        return Announcer(self.notifier, self.uow_factory, self.getting_close)

    def _queued(self) -> None:
        self.webhooks_queued += 1

    async def outbox(self) -> list[dict[str, object]]:
        deliveries = self.db.alerts.deliveries.values()
        return [json.loads(row.delivery.body) for row in sorted(deliveries, key=lambda row: row.delivery.id)]


async def queue_of(service: Service, size: int, **settings: object) -> tuple[int, list[View]]:
    store = await service.add_store(**settings)  # type: ignore[arg-type]
    return store.id, [await service.register(user_request(store.id, f"u{i}")) for i in range(size)]


async def close_events(service: Service, waiting: View) -> list[dict[str, object]]:
    events = await published(service.notifier, f"waiting:{waiting['id']}")
    return [dict(e.data) for e in events if e.type == "getting_close"]


async def test_a_waiting_that_joins_within_the_rank_hears_it_at_once() -> None:
    service = CloseService()
    _, queue = await queue_of(service, 4, notify_at_rank=3, avg_service_minutes=5)

    heard = [await close_events(service, waiting) for waiting in queue]

    assert heard == [
        [{"rank": 1, "estimatedWaitMinutes": 0}],
        [{"rank": 2, "estimatedWaitMinutes": 5}],
        [{"rank": 3, "estimatedWaitMinutes": 10}],
        [],
    ]


@pytest.mark.parametrize("action", ["call", "cancel"])
async def test_a_waiting_hears_it_once_when_those_ahead_leave(action: str) -> None:
    service = CloseService()
    store_id, (first, second, third, fourth, fifth) = await queue_of(service, 5, notify_at_rank=3)

    await service.move.by_store(staff(store_id), store_id, first["id"], action)
    assert await close_events(service, fourth) == [{"rank": 3, "estimatedWaitMinutes": None}]
    assert await close_events(service, fifth) == []

    await service.move.by_store(staff(store_id), store_id, second["id"], action)
    await service.move.by_customer(customer("u2"), third["id"])

    assert await close_events(service, fourth) == [{"rank": 3, "estimatedWaitMinutes": None}]
    assert await close_events(service, fifth) == [{"rank": 3, "estimatedWaitMinutes": None}]
    for waiting in (first, second, third):
        assert len(await close_events(service, waiting)) == 1  # when each joined


async def test_it_comes_after_the_rank_that_brought_it() -> None:
    service = CloseService()
    store_id, (first, *_, fourth) = await queue_of(service, 4, notify_at_rank=3)

    await service.move.by_store(staff(store_id), store_id, first["id"], "call")

    events = await published(service.notifier, f"waiting:{fourth['id']}")
    assert [(e.type, e.data["rank"]) for e in events] == [("rank", 3), ("getting_close", 3)]


async def test_someone_leaving_behind_brings_no_one_closer() -> None:
    service = CloseService()
    store_id, queue = await queue_of(service, 5, notify_at_rank=2)

    await service.move.by_store(staff(store_id), store_id, queue[4]["id"], "cancel")

    assert [len(await close_events(service, waiting)) for waiting in queue] == [1, 1, 0, 0, 0]


async def test_no_one_hears_it_while_the_store_turned_it_off() -> None:
    service = CloseService()
    store_id, queue = await queue_of(service, 4, notify_at_rank=None, webhook_url=HOOK, webhook_secret="s")

    for waiting in queue[:3]:
        await service.move.by_store(staff(store_id), store_id, waiting["id"], "call")

    assert [await close_events(service, waiting) for waiting in queue] == [[], [], [], []]
    assert await service.outbox() == []


async def test_the_stores_webhook_is_queued_with_the_mark() -> None:
    service = CloseService()
    store_id, (first, second) = await queue_of(
        service, 2, notify_at_rank=1, webhook_url=HOOK, webhook_secret="s"
    )

    await service.move.by_store(staff(store_id), store_id, first["id"], "call")

    occurred = NOON_IN_SEOUL.isoformat()
    assert await service.outbox() == [
        {
            "type": "getting_close",
            "storeId": store_id,
            "waitingId": first["id"],
            "number": 1,
            "rank": 1,
            "occurredAt": occurred,
        },
        {
            "type": "getting_close",
            "storeId": store_id,
            "waitingId": second["id"],
            "number": 2,
            "rank": 1,
            "occurredAt": occurred,
        },
    ]
    assert service.webhooks_queued == 2  # the worker is told at once, each time
    assert [row.delivery.url for row in service.db.alerts.deliveries.values()] == [HOOK, HOOK]


async def test_a_store_without_a_webhook_queues_none() -> None:
    service = CloseService()
    await queue_of(service, 2, notify_at_rank=3)

    assert await service.outbox() == []
    assert service.webhooks_queued == 0
    assert len(service.db.alerts.notified) == 2


async def test_a_queued_registration_within_the_rank_hears_it_too() -> None:
    service = CloseService()
    store = await service.add_store(notify_at_rank=2, webhook_url=HOOK, webhook_secret="s")
    requests = [guest_request(store.id, f"+8210{n:08d}") for n in range(3)]

    outcomes = await service.process(requests)

    heard = [await close_events(service, {"id": outcome.waiting_id}) for outcome in outcomes]
    assert [len(events) for events in heard] == [1, 1, 0]
    assert [body["number"] for body in await service.outbox()] == [1, 2]


async def test_two_processes_announcing_the_same_change_tell_it_once() -> None:
    """Two announcers (two processes) see the same ranks at the same moment: the database's mark
    lets only one of them tell each waiting, and queue its webhook."""
    service = CloseService()
    store = await service.add_store(notify_at_rank=3, webhook_url=HOOK, webhook_secret="s")
    without = Service(db=service.db, clock=service.clock)  # registers, tells no one it is close
    await without.register(user_request(store.id, "u1"))
    [waiting] = service.db.waitings.values()

    told = await asyncio.gather(*(service.getting_close.reached(store, [(waiting, 1)]) for _ in range(2)))

    assert sorted(len(t) for t in told) == [0, 1]
    assert len(await service.outbox()) == 1


async def test_a_mark_that_cannot_be_stored_stops_no_other_event(caplog: pytest.LogCaptureFixture) -> None:
    service = CloseService()
    store_id, (first, second) = await queue_of(service, 2, notify_at_rank=1)

    class Away(MemoryUnitOfWork):
        async def __aenter__(self) -> Self:
            raise ConnectionError("database away")

    away = GettingClose(lambda: Away(service.db), service.clock, lambda: None)
    move = MoveWaiting(
        service.uow_factory, service.clock, Announcer(service.notifier, service.uow_factory, away)
    )

    await move.by_store(staff(store_id), store_id, first["id"], "call")

    events = await published(service.notifier, f"waiting:{second['id']}")
    assert [e.type for e in events] == ["rank"]
    assert "getting close not decided" in caplog.text
