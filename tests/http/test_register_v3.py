"""V3 registration: 202 QUEUED at once, decided by the worker, followed by traceId."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from dependency_injector import providers

from application.registration import ProcessRegistrations, store_lock_key
from application.requests import RegistrationRequest, RequestStatus
from entrypoints.container import Container
from harness.httpkit import Api, Tokens, assert_problem, assert_waiting, sse

PROFILES = ("sqlite", "postgresql", "kafka")


async def test_a_customer_is_queued_then_registered(store, api: Api, tokens: Tokens):
    response = await api.join_v3(store["id"], "42", party_size=3)

    assert response.status_code == 202
    queued = response.json()
    assert set(queued) == {"traceId", "status"}
    assert queued["status"] == "QUEUED"
    uuid.UUID(queued["traceId"])  # a well-formed, unguessable id

    outcome = await api.outcome(queued["traceId"], tokens.customer("42"))

    assert outcome["traceId"] == queued["traceId"]
    assert outcome["storeId"] == store["id"]
    assert outcome["status"] == "REGISTERED"
    assert "reason" not in outcome
    waiting = assert_waiting(
        outcome["waiting"], number=1, channel="USER", partySize=3, userId="42", rank=1, status="WAITING"
    )
    assert "statusToken" not in waiting


async def test_the_registered_waiting_is_the_one_readable_by_id(client, store, api: Api, tokens: Tokens):
    trace = (await api.join_v3(store["id"], "42")).json()["traceId"]
    waiting = (await api.outcome(trace, tokens.customer("42")))["waiting"]

    response = await client.get(f"/waitings/{waiting['id']}", headers=tokens.customer("42"))

    assert response.status_code == 200
    assert response.json()["number"] == waiting["number"]


async def test_the_tablet_queues_a_guest_and_the_store_sees_the_status_token(store, api: Api, tokens: Tokens):
    response = await api.join_app_v3(store["id"], name="김민수", phone="+82 10-9876-5432")

    assert response.status_code == 202
    assert response.json()["status"] == "QUEUED"
    outcome = await api.outcome(response.json()["traceId"], tokens.store(store["id"]))
    waiting = assert_waiting(outcome["waiting"], channel="APP", name="김민수", phoneNumber="+821098765432")
    assert len(waiting["statusToken"]) >= 22


async def test_numbers_follow_the_order_requests_were_accepted(store, api: Api, tokens: Tokens):
    # Each 202 is awaited before the next request: acceptance order is submission order.
    traces = [(await api.join_v3(store["id"], f"c{i}")).json()["traceId"] for i in range(10)]
    numbers = [(await api.outcome(t, tokens.admin))["waiting"]["number"] for t in traces]
    assert numbers == list(range(1, 11))


async def test_v2_and_v3_share_one_sequence(store, api: Api, tokens: Tokens):
    assert (await api.join_v2(store["id"], "a")).json()["number"] == 1
    trace = (await api.join_v3(store["id"], "b")).json()["traceId"]
    assert (await api.outcome(trace, tokens.admin))["waiting"]["number"] == 2
    assert (await api.join_v2(store["id"], "c")).json()["number"] == 3


async def test_a_closed_list_is_rejected_on_the_request(make_store, api: Api, tokens: Tokens):
    store = await make_store(waitingOpen=False)
    # Domain rejections are never answered at once: the request is queued, then REJECTED.
    response = await api.join_v3(store["id"], "a")
    assert response.status_code == 202

    outcome = await api.outcome(response.json()["traceId"], tokens.customer("a"))

    assert outcome["status"] == "REJECTED"
    assert outcome["reason"] == "WAITING_CLOSED"
    assert "waiting" not in outcome


async def test_already_waiting_is_rejected_on_the_request(store, api: Api, tokens: Tokens):
    await api.join_v2(store["id"], "a")
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    outcome = await api.outcome(trace, tokens.customer("a"))
    assert (outcome["status"], outcome["reason"]) == ("REJECTED", "ALREADY_WAITING")


async def test_a_guest_already_waiting_is_rejected_on_the_request(store, api: Api, tokens: Tokens):
    await api.join_app_v2(store["id"], phone="010-1234-5678")
    trace = (await api.join_app_v3(store["id"], phone="01012345678")).json()["traceId"]
    outcome = await api.outcome(trace, tokens.store(store["id"]))
    assert (outcome["status"], outcome["reason"]) == ("REJECTED", "ALREADY_WAITING")


async def test_a_full_list_is_rejected_on_the_request_and_takes_no_number(
    make_store, api: Api, tokens: Tokens
):
    store = await make_store(maxQueueSize=1)
    first = (await api.join_v2(store["id"], "a")).json()
    trace = (await api.join_v3(store["id"], "b")).json()["traceId"]

    outcome = await api.outcome(trace, tokens.customer("b"))
    assert (outcome["status"], outcome["reason"]) == ("REJECTED", "QUEUE_FULL")

    await api.act(store["id"], first["id"], "cancel")
    trace = (await api.join_v3(store["id"], "b")).json()["traceId"]
    assert (await api.outcome(trace, tokens.customer("b")))["waiting"]["number"] == 2


async def test_rejection_order_holds_on_the_queue_too(client, make_store, api: Api, tokens: Tokens):
    store = await make_store(maxQueueSize=1)
    await api.join_v2(store["id"], "a")
    # Full and already waiting: ALREADY_WAITING first.
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    assert (await api.outcome(trace, tokens.admin))["reason"] == "ALREADY_WAITING"

    await client.post(f"/stores/{store['id']}/waiting/close", headers=tokens.admin)
    # Closed, full and already waiting: WAITING_CLOSED first.
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    assert (await api.outcome(trace, tokens.admin))["reason"] == "WAITING_CLOSED"


async def test_shape_errors_are_answered_at_once_and_never_queued(make_store, api: Api, tokens: Tokens):
    store = await make_store(maxPartySize=4)

    assert_problem(await api.join_v3(store["id"], "a", party_size=5), 400, "VALIDATION_ERROR")
    assert_problem(await api.join_v3(store["id"], "a", party_size="2"), 400, "VALIDATION_ERROR")
    assert_problem(await api.join_app_v3(store["id"], phone="02-123-4567"), 400, "VALIDATION_ERROR")
    assert_problem(await api.join_app_v3(store["id"], name=" "), 400, "VALIDATION_ERROR")
    assert_problem(await api.join_v3(9999, "a"), 404, "STORE_NOT_FOUND")

    # Nothing was queued: the customer's next request is the store's first number.
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    assert (await api.outcome(trace, tokens.admin))["waiting"]["number"] == 1


@pytest.mark.waitline(lock_wait_seconds=0.05)
async def test_a_busy_store_leaves_the_request_queued_never_lock_timeout(
    client, container, store, api: Api, tokens: Tokens
):
    lock = container.lock()
    async with lock.hold(store_lock_key(store["id"]), wait_time=1, lease_time=None):
        trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
        # The worker keeps failing to take the lock (0.05 s each time) for a while...
        await asyncio.sleep(0.3)
        status = (await client.get(f"/v3/waiting-requests/{trace}", headers=tokens.customer("a"))).json()
        assert status == {"traceId": trace, "storeId": store["id"], "status": "QUEUED"}

    # ...and retries rather than rejecting for its own contention.
    outcome = await api.outcome(trace, tokens.customer("a"))
    assert outcome["status"] == "REGISTERED"


@pytest.mark.parametrize("who", ["requester", "store", "admin"])
async def test_the_requester_the_store_and_admin_may_follow_a_request(store, api: Api, tokens: Tokens, who):
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    headers = {"requester": tokens.customer("a"), "store": tokens.store(store["id"]), "admin": tokens.admin}[
        who
    ]
    assert (await api.outcome(trace, headers))["status"] == "REGISTERED"


@pytest.mark.parametrize("who", ["another customer", "another store"])
async def test_anyone_else_is_told_the_request_does_not_exist(
    client, make_store, api: Api, tokens: Tokens, who
):
    store, other = await make_store(), await make_store(name="Other")
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    await api.outcome(trace, tokens.admin)
    headers = tokens.customer("b") if who == "another customer" else tokens.store(other["id"])

    for path in (f"/v3/waiting-requests/{trace}", f"/v3/waiting-requests/{trace}/events"):
        assert_problem(await client.get(path, headers=headers), 404, "NOT_FOUND")


@pytest.mark.parametrize("trace", [str(uuid.uuid4()), "not-a-uuid", "0"])
async def test_an_unknown_trace_id_is_not_found(client, tokens: Tokens, trace):
    assert_problem(await client.get(f"/v3/waiting-requests/{trace}", headers=tokens.admin), 404, "NOT_FOUND")


@pytest.mark.profiles("sqlite", "postgresql")  # on Kafka: tests/kafka_queue/test_broker_down.py
async def test_a_broker_that_takes_nothing_is_503_and_nothing_is_queued(
    client, container, store, api: Api, tokens: Tokens
):
    queue = container.queue()
    await queue.stop()  # as if the broker were unreachable: publishing fails
    try:
        response = await api.join_v3(store["id"], "a")
        assert_problem(response, 503, "UNAVAILABLE")
        assert "retry-after" in response.headers
    finally:
        await queue.start(container.process())

    listed = await client.get(f"/stores/{store['id']}/waitings", headers=tokens.admin)
    assert listed.json() == {"items": [], "next": None}
    # The refused attempt left no trace: the same customer is accepted and gets number 1.
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    assert (await api.outcome(trace, tokens.admin))["waiting"]["number"] == 1


class BrokenFor(ProcessRegistrations):
    """The real use case, with a bug that strikes one customer's requests (and any batch holding one)."""

    customer = "unlucky"

    async def __call__(self, requests: Sequence[RegistrationRequest]) -> list[RequestStatus]:
        if any(request.user_id == self.customer for request in requests):
            raise RuntimeError("a bug in processing")
        return await super().__call__(requests)


@pytest.fixture
def broken_processing(container: Container) -> None:
    """Before the app starts: its queue workers (or consumer) take the broken use case."""
    container.process.override(
        providers.Singleton(
            BrokenFor,
            container.uow.provider,
            container.lock,
            container.clock,
            container.statuses,
            container.announcer,
            container.lock_times,
        )
    )


@pytest.mark.waitline(queue_attempts=2)
async def test_a_request_that_keeps_failing_ends_failed_and_the_others_go_through(
    broken_processing, client, store, api: Api, tokens: Tokens
):
    unlucky = (await api.join_v3(store["id"], BrokenFor.customer)).json()["traceId"]
    lucky = (await api.join_v3(store["id"], "lucky")).json()["traceId"]

    async with sse(client, f"/v3/waiting-requests/{unlucky}/events", tokens.admin) as stream:
        event = await stream.expect("failed", within=30)
        await stream.ends()
    assert event.data == {
        "traceId": unlucky,
        "storeId": store["id"],
        "status": "FAILED",
        "reason": "PROCESSING_ERROR",
    }
    polled = await client.get(f"/v3/waiting-requests/{unlucky}", headers=tokens.customer(BrokenFor.customer))
    assert polled.json()["status"] == "FAILED"
    assert (await api.outcome(lucky, tokens.admin))["waiting"]["number"] == 1
