"""Bursts: hundreds of concurrent registrations for one store get exactly the numbers 1..n.

The requests really overlap: the client runs the app on the test's own loop (see httpkit), so
`asyncio.gather` has all of them in flight at once, contending for the store's lock.
"""

from __future__ import annotations

import asyncio

import pytest

from application.registration import store_lock_key
from entrypoints.container import Container
from harness.httpkit import Api, Tokens

BURST = 300

# Correctness under contention, not latency, is under test here: a generous lock wait lets every
# V2 request through instead of some answering 503 LOCK_TIMEOUT (which the contract allows).
pytestmark = pytest.mark.waitline(lock_wait_seconds=60)


async def _decided(api: Api, traces: list[str], tokens: Tokens) -> list[dict]:
    """Every request's outcome, polling until decided (bounded by Api.outcome's timeout)."""
    return [await api.outcome(trace, tokens.admin, within=60) for trace in traces]


async def test_300_concurrent_v2_registrations_get_numbers_1_to_300(client, store, api: Api):
    responses = await asyncio.gather(*(api.join_v2(store["id"], f"c{i}") for i in range(BURST)))

    assert [r.status_code for r in responses] == [201] * BURST
    numbers = sorted(r.json()["number"] for r in responses)
    assert numbers == list(range(1, BURST + 1))
    assert len({r.json()["id"] for r in responses}) == BURST
    # The store agrees with what was answered.
    assert (await client.get(f"/stores/{store['id']}")).json()["waitingCount"] == BURST


async def test_300_concurrent_v3_registrations_are_all_queued_then_registered_1_to_300(
    store, api: Api, tokens: Tokens
):
    responses = await asyncio.gather(*(api.join_v3(store["id"], f"c{i}") for i in range(BURST)))

    assert [r.status_code for r in responses] == [202] * BURST
    assert {r.json()["status"] for r in responses} == {"QUEUED"}
    traces = [r.json()["traceId"] for r in responses]
    assert len(set(traces)) == BURST

    outcomes = await _decided(api, traces, tokens)

    assert {o["status"] for o in outcomes} == {"REGISTERED"}
    assert sorted(o["waiting"]["number"] for o in outcomes) == list(range(1, BURST + 1))
    # Each customer got their own waiting.
    assert sorted(o["waiting"]["userId"] for o in outcomes) == sorted(f"c{i}" for i in range(BURST))


async def test_a_mixed_v2_v3_and_tablet_burst_keeps_numbers_unique_and_gapless(
    store, api: Api, tokens: Tokens
):
    calls = []
    for i in range(BURST):
        kind = i % 4
        if kind == 0:
            calls.append(api.join_v2(store["id"], f"c{i}"))
        elif kind == 1:
            calls.append(api.join_v3(store["id"], f"c{i}"))
        elif kind == 2:
            calls.append(api.join_app_v2(store["id"], name=f"손님{i}", phone=f"010-5555-{i:04d}"))
        else:
            calls.append(api.join_app_v3(store["id"], name=f"손님{i}", phone=f"010-7777-{i:04d}"))

    responses = await asyncio.gather(*calls)

    now = [r for r in responses if r.status_code == 201]
    queued = [r for r in responses if r.status_code == 202]
    assert (len(now), len(queued)) == (BURST // 2, BURST // 2), [r.status_code for r in responses]
    outcomes = await _decided(api, [r.json()["traceId"] for r in queued], tokens)
    assert {o["status"] for o in outcomes} == {"REGISTERED"}

    numbers = [r.json()["number"] for r in now] + [o["waiting"]["number"] for o in outcomes]
    assert sorted(numbers) == list(range(1, BURST + 1))


async def test_the_same_customer_bursting_gets_exactly_one_waiting(client, store, api: Api, tokens: Tokens):
    # A double-tapping customer: 20 V2 and 20 V3 attempts at once, one active waiting results.
    v2 = [api.join_v2(store["id"], "eager") for _ in range(20)]
    v3 = [api.join_v3(store["id"], "eager") for _ in range(20)]
    responses = await asyncio.gather(*v2, *v3)

    registered = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code == 409]
    queued = [r for r in responses if r.status_code == 202]
    assert len(registered) + len(refused) == 20 and len(queued) == 20
    outcomes = await _decided(api, [r.json()["traceId"] for r in queued], tokens)

    winners = len(registered) + sum(o["status"] == "REGISTERED" for o in outcomes)
    assert winners == 1
    assert {r.json()["code"] for r in refused} <= {"ALREADY_WAITING"}
    assert {o["reason"] for o in outcomes if o["status"] == "REJECTED"} == {"ALREADY_WAITING"}
    listed = await client.get(f"/stores/{store['id']}/waitings", headers=tokens.admin)
    assert [w["number"] for w in listed.json()["items"]] == [1]


async def test_two_stores_bursting_at_once_each_count_from_one(make_store, api: Api):
    first, second = await make_store(name="A"), await make_store(name="B")
    responses = await asyncio.gather(
        *(api.join_v2(store["id"], f"c{i}") for i in range(100) for store in (first, second))
    )
    by_store: dict[int, list[int]] = {first["id"]: [], second["id"]: []}
    for response in responses:
        assert response.status_code == 201
        by_store[response.json()["storeId"]].append(response.json()["number"])
    for numbers in by_store.values():
        assert sorted(numbers) == list(range(1, 101))


@pytest.mark.waitline(lock_wait_seconds=0.2)
async def test_under_contention_v2_may_refuse_but_a_refusal_takes_no_number(
    store, api: Api, container: Container
):
    # Another holder (another process, the queue's worker) keeps the store's lock while a burst
    # arrives: the burst waits 0.2 s, then is refused. The holder leaves midway through a second
    # burst, which is then decided.
    lock, key = container.lock(), store_lock_key(store["id"])
    async with lock.hold(key, wait_time=1, lease_time=5):
        refused = await asyncio.gather(*(api.join_v2(store["id"], f"c{i}") for i in range(50)))
    for response in refused:
        assert (response.status_code, response.json()["code"]) == (503, "LOCK_TIMEOUT"), response.text
        assert "retry-after" in response.headers

    async def held_a_while() -> None:
        async with lock.hold(key, wait_time=1, lease_time=5):
            await asyncio.sleep(0.05)

    holder = asyncio.create_task(held_a_while())
    await asyncio.sleep(0)
    answers = await asyncio.gather(*(api.join_v2(store["id"], f"c{i}") for i in range(50, 100)))
    await holder
    assert sorted(r.json()["number"] for r in answers) == list(range(1, 51))

    # The refused retry one by one and fill the numbers that follow.
    retried = [await api.join_v2(store["id"], f"c{i}") for i in range(50)]
    assert [r.json()["number"] for r in retried] == list(range(51, 101))


async def test_numbers_follow_the_order_of_acknowledgement_across_v3_and_v2(store, api: Api, tokens: Tokens):
    # A 202 QUEUED is an acceptance: a V2 request answered after it must not get a smaller number.
    acknowledged: list[tuple[str, object]] = []
    for i in range(20):
        queued = await api.join_v3(store["id"], f"queued-{i}")
        acknowledged.append(("v3", queued.json()["traceId"]))
        now = await api.join_v2(store["id"], f"now-{i}")
        acknowledged.append(("v2", now.json()["number"]))
    numbers = [
        value if kind == "v2" else (await api.outcome(str(value), tokens.admin))["waiting"]["number"]
        for kind, value in acknowledged
    ]
    assert numbers == list(range(1, 41))
