"""The metrics a dashboard is built on: registrations by version, channel and outcome, the store
lock's waits, and the live streams open. Each test reads them from its own app's /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from application.registration import store_lock_key
from harness.httpkit import Api, Tokens, assert_problem, sse

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def registrations(samples: Samples, version: str, channel: str) -> dict[str, float]:
    """Outcome -> count, for one version and channel."""
    counted = {}
    for (name, labels), value in samples.items():
        label = dict(labels)
        if name == "waitline_registrations_total" and (label["version"], label["channel"]) == (
            version,
            channel,
        ):
            counted[label["outcome"]] = value
    return counted


def lock_waits(samples: Samples, outcome: str) -> float:
    return samples[("waitline_lock_wait_seconds_count", frozenset({("outcome", outcome)}))]


async def eventually(
    client: httpx.AsyncClient, met: Callable[[Samples], bool], within: float = 20
) -> Samples:
    """The metrics once `met` holds (workers count after they have told the outcome)."""
    async with asyncio.timeout(within):
        while True:
            samples = await scrape(client)
            if met(samples):
                return samples
            await asyncio.sleep(0.05)


async def test_v2_answers_are_counted_by_channel_and_outcome(client, make_store, api: Api):
    store, closed, small = (
        await make_store(),
        await make_store(waitingOpen=False),
        await make_store(maxQueueSize=1),
    )
    assert (await api.join_v2(store["id"], "a")).status_code == 201
    assert_problem(await api.join_v2(store["id"], "a"), 409, "ALREADY_WAITING")
    assert (await api.join_app_v2(store["id"])).status_code == 201
    assert_problem(await api.join_v2(closed["id"], "b"), 409, "WAITING_CLOSED")
    assert (await api.join_v2(small["id"], "c")).status_code == 201
    assert_problem(await api.join_v2(small["id"], "d"), 409, "QUEUE_FULL")
    assert_problem(await api.join_v2(store["id"], "e", party_size=0), 400, "VALIDATION_ERROR")

    samples = await scrape(client)

    assert registrations(samples, "v2", "USER") == {
        "REGISTERED": 2,
        "ALREADY_WAITING": 1,
        "WAITING_CLOSED": 1,
        "QUEUE_FULL": 1,
        "VALIDATION_ERROR": 1,
    }
    assert registrations(samples, "v2", "APP") == {"REGISTERED": 1}
    # Every attempt past the shape check waited for its store's lock; none gave up.
    assert lock_waits(samples, "acquired") == 6
    assert lock_waits(samples, "timeout") == 0


async def test_v3_is_counted_when_accepted_and_again_when_decided(client, store, api: Api, tokens: Tokens):
    first = (await api.join_v3(store["id"], "a")).json()["traceId"]
    await api.outcome(first, tokens.admin)
    again = (await api.join_v3(store["id"], "a")).json()["traceId"]
    guest = (await api.join_app_v3(store["id"])).json()["traceId"]
    assert (await api.outcome(again, tokens.admin))["reason"] == "ALREADY_WAITING"
    assert (await api.outcome(guest, tokens.admin))["status"] == "REGISTERED"
    assert_problem(await api.join_v3(store["id"] + 1000, "b"), 404, "STORE_NOT_FOUND")

    samples = await eventually(client, lambda s: sum(registrations(s, "v3", "APP").values()) == 2)

    assert registrations(samples, "v3", "USER") == {
        "QUEUED": 2,
        "STORE_NOT_FOUND": 1,
        "REGISTERED": 1,
        "ALREADY_WAITING": 1,
    }
    assert registrations(samples, "v3", "APP") == {"QUEUED": 1, "REGISTERED": 1}
    assert registrations(samples, "v2", "USER") == {}
    assert lock_waits(samples, "acquired") >= 1  # the worker decides under the store's lock


@pytest.mark.waitline(lock_wait_seconds=0.05)
async def test_a_lock_that_times_out_is_a_wait_and_an_outcome(client, container, store, api: Api):
    async with container.lock().hold(store_lock_key(store["id"]), wait_time=1, lease_time=None):
        assert_problem(await api.join_v2(store["id"], "a"), 503, "LOCK_TIMEOUT")

    samples = await scrape(client)

    assert registrations(samples, "v2", "USER") == {"LOCK_TIMEOUT": 1}
    assert lock_waits(samples, "timeout") == 1
    assert lock_waits(samples, "acquired") == 0
    timed_out = frozenset({("outcome", "timeout")})
    assert samples[("waitline_lock_wait_seconds_sum", timed_out)] >= 0.05
    assert samples[("waitline_lock_wait_seconds_bucket", timed_out | {("le", "0.025")})] == 0


async def test_open_live_streams_are_a_gauge(client, store, api: Api, tokens: Tokens):
    mine = (await api.join_v2(store["id"], "me")).json()
    assert (await scrape(client))[("waitline_sse_streams", frozenset())] == 0

    async with sse(client, f"/waitings/{mine['id']}/events", tokens.customer("me")) as stream:
        await stream.expect("snapshot")
        assert (await scrape(client))[("waitline_sse_streams", frozenset())] == 1

    await eventually(client, lambda s: s[("waitline_sse_streams", frozenset())] == 0, within=5)


async def test_requests_are_counted_by_route_and_status(client):
    for _ in range(3):
        await client.get("/health/live")
    await client.get("/stores/999999999")
    samples = await scrape(client)
    answered = {
        (labels["method"], labels["route"], labels["status"]): value
        for (name, frozen), value in samples.items()
        if name == "waitline_http_requests_total" and (labels := dict(frozen))
    }
    assert answered[("GET", "/health/live", "200")] == 3
    assert [key for key in answered if key[2] == "404"] == [("GET", "/stores/{storeId}", "404")]
