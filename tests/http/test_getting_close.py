"""Getting close (DOMAIN.md) through the API: `getting_close` on the waiting's own streams, once,
and the store's signed webhook, delivered to a real local endpoint at least once, retried after
failures, kept across a restart, and given up on with a log line and a metric."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.container import Container
from entrypoints.settings import Settings
from harness.httpkit import Api, Tokens, sse
from harness.webhooks import Received, WebhookReceiver, until, verify, webhook_receiver

# Local endpoints, and retries fast enough for a test (the worker looks every 50 ms).
FAST_WEBHOOKS = pytest.mark.waitline(
    webhook_allow_insecure=True, webhook_first_retry_seconds=0.1, webhook_poll_seconds=0.05
)
Serve = Callable[[Container], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with webhook_receiver() as receiver:
        yield receiver


async def set_webhook(client: httpx.AsyncClient, tokens: Tokens, store_id: int, url: str) -> str:
    response = await client.patch(
        f"/stores/{store_id}", json={"webhookUrl": url}, headers=tokens.store(store_id)
    )
    assert response.status_code == 200, response.text
    secret: str = response.json()["webhookSecret"]
    return secret


def assert_signed(received: Received, secret: str) -> dict[str, Any]:
    """What a store's endpoint does with a webhook: check its signature and its age, read it."""
    assert received.method == "POST"
    assert received.headers["content-type"] == "application/json"
    signed_at = verify(received.headers["waitline-signature"], received.body, secret)
    assert abs(time.time() - signed_at) < 60
    body: dict[str, Any] = json.loads(received.body)
    return body


# --- the waiting's streams --------------------------------------------------------------------------


async def test_a_waiting_hears_getting_close_once_when_its_rank_reaches_the_setting(
    client, store, api: Api, tokens: Tokens
) -> None:
    queue = [(await api.join_v2(store["id"], name)).json() for name in ("a", "b", "c", "d")]
    fourth = queue[3]

    async with sse(client, f"/waitings/{fourth['id']}/events", tokens.customer("d")) as stream:
        assert (await stream.expect("snapshot")).data["rank"] == 4
        await api.act(store["id"], queue[0]["id"], "call")
        assert (await stream.expect("rank")).data == {"rank": 3, "estimatedWaitMinutes": 10}
        close = await stream.expect("getting_close")
        assert close.data == {"rank": 3, "estimatedWaitMinutes": 10}

        await api.act(store["id"], queue[1]["id"], "cancel")
        assert (await stream.expect("rank")).data["rank"] == 2
        await stream.silent_for(0.5)  # no second getting_close


async def test_one_who_joins_within_the_setting_hears_it_at_once(
    client, store, api: Api, tokens: Tokens
) -> None:
    """Told as it joins, before any client can listen: a client that resumes from the stream's
    start gets it."""
    mine = (await api.join_v2(store["id"], "me")).json()

    async with sse(
        client, f"/waitings/{mine['id']}/events", tokens.customer("me"), last_event_id="0"
    ) as stream:
        close = await stream.expect("getting_close")

    assert close.data == {"rank": 1, "estimatedWaitMinutes": 0}


async def test_the_guest_link_hears_it_too(client, store, api: Api, tokens: Tokens) -> None:
    phones = [f"010-1234-{n:04d}" for n in range(4)]
    queue = [(await api.join_app_v2(store["id"], phone=phone)).json() for phone in phones]

    async with sse(client, f"/guest/waitings/{queue[3]['statusToken']}/events") as stream:
        await stream.expect("snapshot")
        await api.act(store["id"], queue[0]["id"], "call")
        await stream.expect("rank")
        assert (await stream.expect("getting_close")).data["rank"] == 3


async def test_a_store_that_turned_it_off_tells_no_one(client, store, api: Api, tokens: Tokens) -> None:
    off = await client.patch(f"/stores/{store['id']}", json={"notifyAtRank": None}, headers=tokens.admin)
    assert off.status_code == 200, off.text
    queue = [(await api.join_v2(store["id"], name)).json() for name in ("a", "b")]

    async with sse(client, f"/waitings/{queue[1]['id']}/events", tokens.customer("b")) as stream:
        await stream.expect("snapshot")
        await api.act(store["id"], queue[0]["id"], "call")
        assert (await stream.expect("rank")).data["rank"] == 1
        await stream.silent_for(0.3)


# --- the store's webhook ----------------------------------------------------------------------------


@FAST_WEBHOOKS
@pytest.mark.profiles("sqlite", "postgresql", "kafka")
@pytest.mark.parametrize("join", ["join_v2", "join_v3"])
async def test_the_webhook_is_signed_and_delivered_once(
    client, store, api: Api, tokens: Tokens, receiver: WebhookReceiver, join: str
) -> None:
    secret = await set_webhook(client, tokens, store["id"], receiver.url)

    joined = await getattr(api, join)(store["id"], "me")
    assert joined.status_code in (201, 202), joined.text

    [received] = await receiver.requests(1)
    body = assert_signed(received, secret)
    waiting_id = (await client.get("/stores/{}/waitings".format(store["id"]), headers=tokens.admin)).json()[
        "items"
    ][0]["id"]
    assert body == {
        "type": "getting_close",
        "storeId": store["id"],
        "waitingId": waiting_id,
        "number": 1,
        "rank": 1,
        "occurredAt": body["occurredAt"],
    }
    assert datetime.fromisoformat(body["occurredAt"]).utcoffset() is not None
    assert received.path == "/hooks/waitline"
    await receiver.quiet_for(0.5)


@FAST_WEBHOOKS
async def test_a_webhook_is_sent_when_someone_ahead_leaves(
    client, store, api: Api, tokens: Tokens, receiver: WebhookReceiver
) -> None:
    queue = [(await api.join_v2(store["id"], name)).json() for name in ("a", "b", "c", "d")]
    secret = await set_webhook(client, tokens, store["id"], receiver.url)

    await api.act(store["id"], queue[0]["id"], "cancel")

    [received] = await receiver.requests(1)
    body = assert_signed(received, secret)
    assert (body["waitingId"], body["number"], body["rank"]) == (queue[3]["id"], 4, 3)


@FAST_WEBHOOKS
async def test_an_endpoint_failing_twice_gets_the_webhook_on_the_third_try(
    client, store, api: Api, tokens: Tokens, receiver: WebhookReceiver
) -> None:
    secret = await set_webhook(client, tokens, store["id"], receiver.url)
    receiver.answers = [500, 503]

    await api.join_v2(store["id"], "me")

    tries = await receiver.requests(3)
    assert len({received.body for received in tries}) == 1  # the same webhook each time
    for received in tries:
        assert_signed(received, secret)  # signed again for each try
    await receiver.quiet_for(0.5)


@pytest.mark.waitline(
    webhook_allow_insecure=True,
    webhook_first_retry_seconds=1,
    webhook_poll_seconds=0.05,
    webhook_timeout_seconds=2,
)
async def test_a_slow_endpoint_never_slows_a_registration_or_a_store_action(
    client, store, api: Api, tokens: Tokens, receiver: WebhookReceiver
) -> None:
    await set_webhook(client, tokens, store["id"], receiver.url)
    receiver.delay = 5  # each try waits for the timeout (2 s) before it counts as failed
    took: list[float] = []

    async def timed(request: Awaitable[httpx.Response]) -> httpx.Response:
        started = time.monotonic()
        response = await request
        took.append(time.monotonic() - started)
        return response

    queue = [(await timed(api.join_v2(store["id"], name))).json() for name in ("a", "b", "c", "d")]
    called = await timed(api.act(store["id"], queue[0]["id"], "call"))  # d's rank becomes 3

    assert called.status_code == 200
    assert max(took) < 1.5, took
    assert len(await receiver.requests(4)) == 4  # a, b and c as they joined; d when a was called


@FAST_WEBHOOKS
async def test_a_pending_webhook_survives_a_restart(
    settings: Settings, serve: Serve, tokens: Tokens, receiver: WebhookReceiver
) -> None:
    receiver.answers = [500] * 100
    async with serve(_container(settings)) as client:
        store = (
            await client.post("/stores", json={"name": "Gamja", "waitingOpen": True}, headers=tokens.admin)
        ).json()
        secret = await set_webhook(client, tokens, store["id"], receiver.url)
        await Api(client, tokens).join_v2(store["id"], "me")
        await receiver.requests(1)
    # Stopped with the webhook not delivered. The endpoint recovers; a new process starts on the
    # same database.
    receiver.answers.clear()
    failed = len(receiver.received)
    await receiver.quiet_for(0.3)

    async with serve(_container(settings)):
        received = await receiver.requests(failed + 1)

    body = assert_signed(received[-1], secret)
    assert body["storeId"] == store["id"]
    assert received[-1].body == received[0].body


@pytest.mark.waitline(
    webhook_allow_insecure=True,
    webhook_first_retry_seconds=0.1,
    webhook_poll_seconds=0.05,
    webhook_attempts=2,
)
async def test_an_endpoint_that_keeps_failing_is_given_up_with_a_log_line_and_a_metric(
    client, store, api: Api, tokens: Tokens, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    await set_webhook(client, tokens, store["id"], receiver.url)
    receiver.answers = [500] * 100

    with caplog.at_level(logging.WARNING, "application.webhooks"):
        await api.join_v2(store["id"], "me")
        await receiver.requests(2)
        await until(lambda: "given up after 2 attempts: answered 500" in caplog.text, "the log line")

    await _counted(client, given_up=1, retrying=1, delivered=0)
    await receiver.quiet_for(0.5)


@FAST_WEBHOOKS
async def test_delivered_webhooks_are_counted(
    client, store, api: Api, tokens: Tokens, receiver: WebhookReceiver
) -> None:
    await set_webhook(client, tokens, store["id"], receiver.url)
    receiver.answers = [502]

    await api.join_v2(store["id"], "a")
    await api.join_v2(store["id"], "b")
    await receiver.requests(3)

    await _counted(client, delivered=2, retrying=1, given_up=0, dropped=0)


def _container(settings: Settings) -> Container:
    container = Container()
    container.settings.override(settings)
    return container


async def _counted(client: httpx.AsyncClient, within: float = 10, **expected: float) -> None:
    """`waitline_webhook_deliveries_total` by outcome, once it says `expected` (the worker counts
    an attempt once its outcome is kept, a moment after the endpoint saw it)."""
    deadline = time.monotonic() + within
    while True:
        text = (await client.get("/metrics")).text
        counted = {
            sample.labels["outcome"]: sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "waitline_webhook_deliveries"
            for sample in family.samples
            if sample.name == "waitline_webhook_deliveries_total"
        }
        if all(counted.get(outcome) == value for outcome, value in expected.items()):
            return
        assert time.monotonic() < deadline, counted
        await asyncio.sleep(0.05)
