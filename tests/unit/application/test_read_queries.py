"""Queries: a waiting with its rank, a store's list, the public view, a request's outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.access import Forbidden
from domain.errors import NotFound, StoreNotFound
from domain.waiting import WaitingStatus
from unit.helpers import ADMIN, Service, customer, guest_request, staff, user_request


async def test_a_customer_sees_their_rank_move_up() -> None:
    service = Service()
    store = await service.add_store(avg_service_minutes=3)
    first = await service.register(user_request(store.id, "u1"))
    mine = await service.register(user_request(store.id, "u2"))

    assert (await service.queries.waiting(customer("u2"), mine["id"]))["rank"] == 2
    await service.move.by_store(staff(store.id), store.id, first["id"], "call")
    view = await service.queries.waiting(customer("u2"), mine["id"])

    assert (view["rank"], view["estimatedWaitMinutes"]) == (1, 0)


async def test_a_called_waiting_has_no_rank() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await service.register(user_request(store.id, "u1"))
    await service.move.by_store(staff(store.id), store.id, waiting["id"], "call")

    assert "rank" not in await service.queries.waiting(customer("u1"), waiting["id"])


async def test_another_customers_waiting_is_not_found() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await service.register(user_request(store.id, "u1"))

    with pytest.raises(NotFound):
        await service.queries.waiting(customer("u2"), waiting["id"])


async def test_staff_see_a_guests_status_token_and_a_guest_sees_a_masked_view() -> None:
    service = Service()
    store = await service.add_store()
    waiting = await service.register(guest_request(store.id, name="김민수"))

    by_staff = await service.queries.waiting(staff(store.id), waiting["id"])
    by_guest = await service.queries.guest_waiting(by_staff["statusToken"])

    assert by_staff["name"] == "김민수"
    assert (by_guest["name"], by_guest["rank"]) == ("김*수", 1)
    assert "statusToken" not in by_guest


async def test_an_unknown_status_token_is_not_found() -> None:
    with pytest.raises(NotFound):
        await Service().queries.guest_waiting("nope")


async def test_the_stores_list_ranks_only_its_waiting_entries() -> None:
    service = Service()
    store = await service.add_store()
    views = [await service.register(user_request(store.id, f"u{i}")) for i in range(3)]
    await service.move.by_store(staff(store.id), store.id, views[0]["id"], "call")

    everything = await service.queries.store_waitings(staff(store.id), store.id, None)
    waiting_only = await service.queries.store_waitings(ADMIN, store.id, WaitingStatus.WAITING)

    assert [(i["number"], i.get("rank")) for i in everything["items"]] == [(1, None), (2, 1), (3, 2)]
    assert [(i["number"], i["rank"]) for i in waiting_only["items"]] == [(2, 1), (3, 2)]


async def test_the_stores_list_is_for_its_staff() -> None:
    service = Service()
    store = await service.add_store()

    with pytest.raises(Forbidden):
        await service.queries.store_waitings(customer("u1"), store.id, None)


async def test_the_public_view_counts_todays_waiting_entries_only() -> None:
    service = Service()
    store = await service.add_store(avg_service_minutes=5)
    views = [await service.register(user_request(store.id, f"u{i}")) for i in range(3)]
    await service.move.by_store(staff(store.id), store.id, views[0]["id"], "call")

    today = await service.queries.public_store(store.id)
    service.clock.advance(timedelta(days=1))
    tomorrow = await service.queries.public_store(store.id)

    assert (today["waitingCount"], today["estimatedWaitMinutes"]) == (2, 10)
    assert (tomorrow["waitingCount"], tomorrow["estimatedWaitMinutes"]) == (0, 0)


async def test_the_public_view_of_an_unknown_store_is_not_found() -> None:
    with pytest.raises(StoreNotFound):
        await Service().queries.public_store(404)


async def test_a_customer_follows_their_own_request_only() -> None:
    service = Service()
    store = await service.add_store()
    request = user_request(store.id, "u1")
    await service.submit(request)
    await service.process([request])

    view = await service.queries.request(customer("u1"), request.trace_id)

    assert (view["status"], view["waiting"]["number"]) == ("REGISTERED", 1)
    assert "statusToken" not in view["waiting"]
    with pytest.raises(NotFound):
        await service.queries.request(customer("u2"), request.trace_id)
    assert (await service.queries.request(staff(store.id), request.trace_id))["status"] == "REGISTERED"


async def test_a_rejected_request_says_why() -> None:
    service = Service()
    store = await service.add_store(waiting_open=False)
    request = user_request(store.id, "u1")
    await service.process([request])

    view = await service.queries.request(customer("u1"), request.trace_id)

    assert (view["status"], view["reason"]) == ("REJECTED", "WAITING_CLOSED")
    assert "waiting" not in view


async def test_a_decided_request_is_found_in_the_log_when_its_status_was_forgotten() -> None:
    service = Service()
    store = await service.add_store()
    request = user_request(store.id, "u1")
    await service.process([request])
    await service.statuses.forget(request.trace_id)

    assert (await service.queries.request(customer("u1"), request.trace_id))["status"] == "REGISTERED"


async def test_a_stores_snapshot_holds_its_settings_and_todays_active_waitings_ranked() -> None:
    service = Service()
    store = await service.add_store(avg_service_minutes=6)
    yesterday = await service.register(user_request(store.id, "u0"))
    service.clock.advance(timedelta(days=1))
    views = [await service.register(user_request(store.id, f"u{i}")) for i in range(1, 6)]
    for action, view in [("call", views[0]), ("call", views[1]), ("seat", views[1]), ("cancel", views[2])]:
        await service.move.by_store(staff(store.id), store.id, view["id"], action)

    snapshot = await service.queries.store_snapshot(staff(store.id), store.id)

    assert (snapshot["store"]["id"], snapshot["store"]["avgServiceMinutes"]) == (store.id, 6)
    assert [
        (i["number"], i["status"], i.get("rank"), i.get("estimatedWaitMinutes")) for i in snapshot["items"]
    ] == [
        (1, "CALLED", None, None),
        (4, "WAITING", 1, 0),
        (5, "WAITING", 2, 6),
    ]
    assert yesterday["id"] not in [i["id"] for i in snapshot["items"]]


async def test_a_stores_snapshot_is_for_its_staff() -> None:
    service = Service()
    store = await service.add_store()

    with pytest.raises(Forbidden):
        await service.queries.store_snapshot(staff(store.id + 1), store.id)


async def test_a_request_still_queued_is_followed_as_queued() -> None:
    service = Service()
    store = await service.add_store()
    request = user_request(store.id, "u1")
    await service.submit(request)

    view = await service.queries.request(customer("u1"), request.trace_id)

    assert view == {"traceId": request.trace_id, "storeId": store.id, "status": "QUEUED"}


async def test_after_a_restart_a_decided_request_is_answered_from_the_request_log() -> None:
    service = Service()
    store = await service.add_store()
    request = user_request(store.id, "u1")
    await service.process([request])
    restarted = Service(db=service.db)  # the statuses were kept in the old process's memory

    view = await restarted.queries.request(customer("u1"), request.trace_id)

    assert (view["status"], view["waiting"]["number"]) == ("REGISTERED", 1)


async def test_a_status_that_missed_the_outcome_gives_way_to_the_request_log() -> None:
    service = Service()
    store = await service.add_store()
    request = user_request(store.id, "u1")
    await service.submit(request)  # QUEUED in the statuses
    await Service(db=service.db).process([request])  # decided where those statuses never heard of it

    view = await service.queries.request(customer("u1"), request.trace_id)

    assert (view["status"], view["waiting"]["number"]) == ("REGISTERED", 1)


async def test_the_stores_staff_follow_a_guests_request_with_its_status_token() -> None:
    service = Service()
    store = await service.add_store()
    request = guest_request(store.id)
    await service.process([request])

    view = await service.queries.request(staff(store.id), request.trace_id)

    assert view["waiting"]["statusToken"] == service.db.waitings[view["waiting"]["id"]].status_token
