"""Live streams on the embedded notifier: a snapshot or what was missed, then changes, masked for
whoever follows, and the end of a waiting's stream. (Over HTTP: tests/http/test_sse.py.)"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from adapters.notify.local import LocalNotifier, LocalSubscription
from adapters.status.local import LocalRequestStatuses
from application.access import Forbidden
from application.live import LiveUpdates
from application.ports import Event
from application.requests import RequestStatus
from domain.errors import NotFound, StoreNotFound
from unit.helpers import ADMIN, Service, customer, guest_request, published, staff, user_request

PATIENCE = 2.0  # seconds a stream may stay silent before the test fails


def live(service: Service) -> LiveUpdates:
    return LiveUpdates(service.notifier, service.queries, service.statuses)


async def next_event(events: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(events), PATIENCE)


async def ends(events: AsyncIterator[Event]) -> None:
    with pytest.raises(StopAsyncIteration):
        await next_event(events)


class CountingNotifier(LocalNotifier):
    """The embedded notifier, counting the subscriptions still open on each stream."""

    def __init__(self) -> None:
        super().__init__()
        self.open: Counter[str] = Counter()

    @asynccontextmanager
    async def subscribe(self, stream: str, last_event_id: str | None) -> AsyncIterator[LocalSubscription]:
        async with super().subscribe(stream, last_event_id) as subscription:
            self.open[stream] += 1
            try:
                yield subscription
            finally:
                self.open[stream] -= 1


def counted() -> tuple[Service, CountingNotifier]:
    notifier = CountingNotifier()
    return Service(notifier=notifier), notifier


async def test_a_waiting_stream_starts_with_a_ranked_snapshot_then_follows_the_waiting_to_its_end() -> None:
    service = Service()
    store = await service.add_store(avg_service_minutes=4)
    ahead = await service.register(user_request(store.id, "u1"))
    mine = await service.register(user_request(store.id, "u2"))
    events = await live(service).waiting(customer("u2"), mine["id"], None)

    snapshot = await next_event(events)
    await service.move.by_store(staff(store.id), store.id, ahead["id"], "cancel")
    rank = await next_event(events)
    await service.move.by_store(staff(store.id), store.id, mine["id"], "call")
    called = await next_event(events)
    await service.move.by_store(staff(store.id), store.id, mine["id"], "seat")
    seated = await next_event(events)

    assert (snapshot.type, snapshot.data["rank"], snapshot.data["estimatedWaitMinutes"]) == ("snapshot", 2, 4)
    assert (rank.type, rank.data) == ("rank", {"rank": 1, "estimatedWaitMinutes": 0})
    assert (called.type, called.data["status"]) == ("called", "CALLED")
    assert (seated.type, seated.data["status"]) == ("seated", "SEATED")
    assert int(snapshot.id) < int(rank.id) < int(called.id) < int(seated.id)
    await ends(events)


async def test_the_snapshot_carries_the_id_of_the_streams_latest_event() -> None:
    service = Service()
    store = await service.add_store()
    mine = await service.register(user_request(store.id, "u1"))
    await service.move.by_store(staff(store.id), store.id, mine["id"], "call")
    (called,) = await published(service.notifier, f"waiting:{mine['id']}")

    events = await live(service).waiting(customer("u1"), mine["id"], None)

    snapshot = await next_event(events)
    assert (snapshot.id, snapshot.data["status"]) == (called.id, "CALLED")
    await events.aclose()


@pytest.mark.parametrize("steps", [["cancel"], ["call", "seat"], ["call", "no_show"]])
async def test_a_finished_waiting_streams_its_snapshot_and_ends(steps: list[str]) -> None:
    service = Service()
    store = await service.add_store()
    mine = await service.register(user_request(store.id, "u1"))
    for step in steps:
        await service.move.by_store(staff(store.id), store.id, mine["id"], step)

    events = await live(service).waiting(customer("u1"), mine["id"], None)

    assert (await next_event(events)).type == "snapshot"
    await ends(events)


@pytest.mark.parametrize(("step", "event"), [("cancel", "cancelled"), ("no_show", "no_show")])
async def test_a_waiting_stream_ends_after_any_terminal_event(step: str, event: str) -> None:
    service = Service()
    store = await service.add_store()
    mine = await service.register(user_request(store.id, "u1"))
    await service.move.by_store(staff(store.id), store.id, mine["id"], "call")
    events = await live(service).waiting(customer("u1"), mine["id"], None)
    assert (await next_event(events)).type == "snapshot"

    await service.move.by_store(staff(store.id), store.id, mine["id"], step)

    assert (await next_event(events)).type == event
    await ends(events)


async def test_a_reconnecting_client_gets_what_it_missed_and_the_stream_ends_after_a_replayed_end() -> None:
    service = Service()
    store = await service.add_store()
    mine = await service.register(user_request(store.id, "u1"))
    events = await live(service).waiting(customer("u1"), mine["id"], None)
    seen = await next_event(events)
    await events.aclose()
    await service.move.by_store(staff(store.id), store.id, mine["id"], "call")
    await service.move.by_store(staff(store.id), store.id, mine["id"], "seat")
    await service.register(user_request(store.id, "u2"))  # another waiting's news: not on this stream

    again = await live(service).waiting(customer("u1"), mine["id"], seen.id)

    missed = [await next_event(again), await next_event(again)]
    assert [(e.type, e.data["status"]) for e in missed] == [("called", "CALLED"), ("seated", "SEATED")]
    assert [e.id for e in missed] == [
        e.id for e in await published(service.notifier, f"waiting:{mine['id']}")
    ]
    await ends(again)


async def test_a_stranger_is_refused_before_the_stream_starts() -> None:
    service, notifier = counted()
    store = await service.add_store()
    mine = await service.register(user_request(store.id, "u1"))

    with pytest.raises(NotFound):
        await live(service).waiting(customer("u2"), mine["id"], None)
    assert notifier.open[f"waiting:{mine['id']}"] == 0


async def test_staff_following_a_guest_see_its_status_token_on_every_event() -> None:
    service = Service()
    store = await service.add_store()
    guest = await service.register(guest_request(store.id))
    events = await live(service).waiting(staff(store.id), guest["id"], None)

    snapshot = await next_event(events)
    await service.move.by_store(staff(store.id), store.id, guest["id"], "call")
    called = await next_event(events)
    again = await live(service).waiting(ADMIN, guest["id"], snapshot.id)
    replayed = await next_event(again)

    for event in (snapshot, called, replayed):
        assert event.data["statusToken"] == guest["statusToken"]
    await events.aclose()
    await again.aclose()


async def test_the_guest_stream_is_masked_from_the_snapshot_to_the_end_and_on_replay() -> None:
    service = Service()
    store = await service.add_store()
    guest = await service.register(guest_request(store.id, name="김민수"))
    token = guest["statusToken"]
    events = await live(service).guest_waiting(token, None)

    snapshot = await next_event(events)
    await service.move.by_store(staff(store.id), store.id, guest["id"], "call")
    called = await next_event(events)
    await service.move.by_guest(token)
    cancelled = await next_event(events)
    await ends(events)
    replayed = await live(service).guest_waiting(token, snapshot.id)
    missed = [await next_event(replayed), await next_event(replayed)]

    assert (snapshot.type, snapshot.data["rank"]) == ("snapshot", 1)
    assert [called.type, cancelled.type] == ["called", "cancelled"]
    for event in (snapshot, called, cancelled, *missed):
        assert (event.data["name"], event.data["phoneNumber"]) == ("김*수", "010-****-5678")
        assert "statusToken" not in event.data


async def test_an_unknown_status_token_has_no_stream() -> None:
    with pytest.raises(NotFound):
        await live(Service()).guest_waiting("nope", None)


async def test_the_store_stream_starts_with_the_active_list_and_goes_on_after_a_waiting_ends() -> None:
    service, notifier = counted()
    store = await service.add_store()
    first = await service.register(user_request(store.id, "u1"))
    await service.register(user_request(store.id, "u2"))
    events = await live(service).store(staff(store.id), store.id, None)

    snapshot = await next_event(events)
    await service.move.by_store(staff(store.id), store.id, first["id"], "cancel")
    cancelled = await next_event(events)
    await service.register(user_request(store.id, "u3"))
    registered = await next_event(events)

    assert snapshot.type == "snapshot"
    assert snapshot.data["store"]["id"] == store.id
    assert [(i["number"], i["rank"]) for i in snapshot.data["items"]] == [(1, 1), (2, 2)]
    assert (cancelled.type, registered.type, registered.data["number"]) == ("cancelled", "registered", 3)
    assert notifier.open[f"store:{store.id}"] == 1
    await events.aclose()
    assert notifier.open[f"store:{store.id}"] == 0


async def test_screens_of_two_stores_opening_at_once_each_get_their_own_stores_list() -> None:
    service = Service()
    here, there = await service.add_store(name="Here"), await service.add_store(name="There")
    await service.register(user_request(there.id))
    updates = live(service)  # one process's: its screens share reads

    streams = await asyncio.gather(*(updates.store(ADMIN, store.id, None) for store in (here, there)))

    snapshots = [await next_event(events) for events in streams]
    assert [(s.data["store"]["name"], len(s.data["items"])) for s in snapshots] == [("Here", 0), ("There", 1)]
    for events in streams:
        await events.aclose()


async def test_the_store_stream_is_for_its_staff() -> None:
    service = Service()
    here, there = await service.add_store(name="Here"), await service.add_store(name="There")

    with pytest.raises(Forbidden):
        await live(service).store(staff(there.id), here.id, None)
    with pytest.raises(Forbidden):
        await live(service).store(customer("u1"), here.id, None)


async def test_a_stream_whose_snapshot_cannot_be_read_lets_its_subscription_go() -> None:
    service, notifier = counted()

    with pytest.raises(StoreNotFound):
        await live(service).store(ADMIN, 404, None)
    assert notifier.open["store:404"] == 0


async def test_the_store_stream_replays_what_a_reconnecting_screen_missed() -> None:
    service = Service()
    store = await service.add_store()
    events = await live(service).store(staff(store.id), store.id, None)
    seen = await next_event(events)
    await events.aclose()
    await service.register(guest_request(store.id))

    again = await live(service).store(staff(store.id), store.id, seen.id)

    missed = await next_event(again)
    assert (missed.type, missed.data["number"]) == ("registered", 1)
    assert "statusToken" in missed.data  # staff see everything
    await again.aclose()


async def test_a_request_stream_gives_its_registered_waiting_once_and_ends() -> None:
    service = Service()
    store = await service.add_store()
    request = user_request(store.id, "u1")
    await service.submit(request)
    await service.process([request])

    events = await live(service).request(customer("u1"), request.trace_id)

    event = await next_event(events)
    assert (event.id, event.type) == (request.trace_id, "registered")
    assert (event.data["status"], event.data["waiting"]["number"]) == ("REGISTERED", 1)
    await ends(events)


async def test_a_request_stream_waits_for_the_decision() -> None:
    service = Service()
    store = await service.add_store(waiting_open=False)
    request = user_request(store.id, "u1")
    await service.submit(request)
    events = await live(service).request(customer("u1"), request.trace_id)
    pending = asyncio.ensure_future(next_event(events))
    await asyncio.sleep(0.05)
    assert not pending.done()  # still QUEUED: nothing to say yet

    await service.process([request])

    event = await pending
    assert (event.type, event.data["status"], event.data["reason"]) == (
        "rejected",
        "REJECTED",
        "WAITING_CLOSED",
    )
    assert "waiting" not in event.data
    await ends(events)


class StatusesThatMissTheOutcome(LocalRequestStatuses):
    """Statuses kept apart (Redis) that never hear the outcome: each wait for it runs out at once,
    as it would after `within` seconds; without a limit it would never run out."""

    async def wait_decided(self, trace_id: str, within: float | None) -> RequestStatus | None:
        if within is None:
            await asyncio.Event().wait()
        await asyncio.sleep(0)
        return await self.get(trace_id)


async def test_a_request_stream_finds_the_outcome_in_the_request_log_when_its_status_never_comes() -> None:
    service = Service(statuses=StatusesThatMissTheOutcome())
    store = await service.add_store()
    request = user_request(store.id, "u1")
    await service.submit(request)
    events = await live(service).request(customer("u1"), request.trace_id)
    pending = asyncio.ensure_future(next_event(events))
    await asyncio.sleep(0.01)  # the stream waits for the outcome

    await Service(db=service.db).process([request])  # decided; these statuses are not told

    event = await pending
    assert (event.type, event.data["waiting"]["number"]) == ("registered", 1)
    await ends(events)


async def test_a_failed_request_ends_its_stream_failed() -> None:
    service = Service()
    store = await service.add_store()
    request = user_request(store.id, "u1")
    await service.submit(request)
    events = await live(service).request(customer("u1"), request.trace_id)

    await service.process.give_up([request], "poison")

    event = await next_event(events)
    assert (event.type, event.data["status"], event.data["reason"]) == ("failed", "FAILED", "poison")
    await ends(events)


async def test_a_request_of_someone_else_has_no_stream() -> None:
    service = Service()
    store = await service.add_store()
    request = user_request(store.id, "u1")
    await service.submit(request)

    with pytest.raises(NotFound):
        await live(service).request(customer("u2"), request.trace_id)
