"""Idempotent retries: V2 and V3 registrations under an `Idempotency-Key` header.

The same caller sending the same key within 24 hours gets the first answer again (status and
body) and nothing new is done; another body or path under the key is 422; while the first is
still being answered, 409 with Retry-After. The app runs on a settable clock, so that a test can
let a key's 24 hours pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from prometheus_client.parser import text_string_to_metric_families

from application.registration import store_lock_key
from entrypoints.container import Container
from harness.httpkit import Api, Headers, Tokens, assert_problem, assert_waiting
from unit.helpers import SettableClock

KEY = "Idempotency-Key"
REPLAYED = "idempotent-replayed"
Serve = Callable[[Container], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@dataclass(frozen=True)
class Route:
    """One of the four registrations that take a key."""

    name: str
    prefix: str
    tablet: bool
    status: int

    def url(self, store_id: int) -> str:
        return f"{self.prefix}{'/app' if self.tablet else ''}/stores/{store_id}/waitings"

    def body(self, party_size: int = 2, phone: str = "010-1234-5678") -> dict[str, Any]:
        if self.tablet:
            return {"name": "김민수", "phoneNumber": phone, "partySize": party_size}
        return {"partySize": party_size}

    def caller(self, tokens: Tokens, store_id: int, who: str = "alice") -> Headers:
        return tokens.store(store_id, sub=who) if self.tablet else tokens.customer(who)

    @property
    def queued(self) -> bool:
        return self.prefix == "/v3"


V2 = Route("v2", "/v2", tablet=False, status=201)
V2_TABLET = Route("v2-tablet", "/v2", tablet=True, status=201)
V3 = Route("v3", "/v3", tablet=False, status=202)
V3_TABLET = Route("v3-tablet", "/v3", tablet=True, status=202)
ROUTES = [pytest.param(route, id=route.name) for route in (V2, V2_TABLET, V3, V3_TABLET)]


async def send(
    client: httpx.AsyncClient,
    route: Route,
    store_id: int,
    headers: Headers,
    key: str | None = "key-1",
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    keyed = headers if key is None else {**headers, KEY: key}
    return await client.post(route.url(store_id), json=body or route.body(), headers=keyed)


async def waitings(client: httpx.AsyncClient, tokens: Tokens, store_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/stores/{store_id}/waitings", headers=tokens.store(store_id))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def settled(api: Api, route: Route, answer: httpx.Response, headers: Headers) -> dict[str, Any] | None:
    """V3: the request's outcome, once decided (V2 is decided already)."""
    if not route.queued:
        return None
    return await api.outcome(answer.json()["traceId"], headers)


def assert_replay_of(replay: httpx.Response, first: httpx.Response) -> None:
    assert (replay.status_code, replay.content) == (first.status_code, first.content)
    assert replay.headers["content-type"] == first.headers["content-type"]
    assert replay.headers[REPLAYED] == "true"
    assert REPLAYED not in first.headers


@pytest.mark.parametrize("route", ROUTES)
async def test_the_same_key_again_gets_the_first_answer_and_registers_once(
    client: httpx.AsyncClient, store: dict[str, Any], api: Api, tokens: Tokens, route: Route
) -> None:
    caller = route.caller(tokens, store["id"])
    first = await send(client, route, store["id"], caller)
    assert first.status_code == route.status, first.text

    again = await send(client, route, store["id"], caller)
    # Serialised afresh (other key order, other spacing): still the same request.
    body = json.dumps(dict(reversed(route.body().items())), indent=2)
    rewritten = await client.post(
        route.url(store["id"]),
        content=body,
        headers={**caller, KEY: "key-1", "Content-Type": "application/json"},
    )

    assert_replay_of(again, first)
    assert_replay_of(rewritten, first)
    outcome = await settled(api, route, first, caller)
    [waiting] = await waitings(client, tokens, store["id"])
    assert waiting["number"] == 1
    if outcome is None:
        assert first.json()["id"] == waiting["id"]
    else:
        assert outcome["status"] == "REGISTERED" and outcome["waiting"]["id"] == waiting["id"]


async def test_a_v3_replay_carries_the_same_trace_id(
    client: httpx.AsyncClient, store: dict[str, Any], api: Api, tokens: Tokens
) -> None:
    alice = tokens.customer("alice")
    first = (await send(client, V3, store["id"], alice)).json()
    outcome = await api.outcome(first["traceId"], alice)

    again = await send(client, V3, store["id"], alice)

    assert again.status_code == 202
    assert again.json() == first == {"traceId": outcome["traceId"], "status": "QUEUED"}
    assert (await api.outcome(first["traceId"], alice))["waiting"]["id"] == outcome["waiting"]["id"]
    assert len(await waitings(client, tokens, store["id"])) == 1


async def test_a_refusal_by_the_rules_is_kept_and_given_again(
    client: httpx.AsyncClient, store: dict[str, Any], api: Api, tokens: Tokens
) -> None:
    alice = tokens.customer("alice")
    waiting = (await send(client, V2, store["id"], alice, key=None)).json()
    refused = await send(client, V2, store["id"], alice)
    assert_problem(refused, 409, "ALREADY_WAITING")
    assert (await api.act(store["id"], waiting["id"], "cancel")).status_code == 200

    # The refusal was the decision: it is the answer again, though alice could register now.
    again = await send(client, V2, store["id"], alice)

    assert_replay_of(again, refused)
    assert [w["status"] for w in await waitings(client, tokens, store["id"])] == ["CANCELLED"]
    assert (await send(client, V2, store["id"], alice, key="key-2")).status_code == 201


@pytest.mark.parametrize("route", ROUTES)
async def test_another_body_or_path_under_the_key_is_refused(
    client: httpx.AsyncClient, make_store: Any, api: Api, tokens: Tokens, route: Route
) -> None:
    store, other = await make_store(), await make_store()
    caller = route.caller(tokens, store["id"])
    first = await send(client, route, store["id"], caller)
    other_version = V3 if route.prefix == "/v2" else V2
    other_version = Route(other_version.name, other_version.prefix, route.tablet, other_version.status)

    refusals = [
        await send(client, route, store["id"], caller, body=route.body(party_size=3)),
        await send(client, other_version, store["id"], caller),
    ]
    if not route.tablet:  # a store's token acts for its own store only
        refusals.append(await send(client, route, other["id"], caller))

    for refused in refusals:
        problem = assert_problem(refused, 422, "IDEMPOTENCY_KEY_REUSED")
        assert KEY in problem["detail"]
    await settled(api, route, first, caller)
    assert len(await waitings(client, tokens, store["id"])) == 1
    assert await waitings(client, tokens, other["id"]) == []


async def test_other_callers_keys_are_their_own(
    client: httpx.AsyncClient, make_store: Any, tokens: Tokens
) -> None:
    store, other = await make_store(), await make_store()

    alice = await send(client, V2, store["id"], tokens.customer("alice"))
    bob = await send(client, V2, store["id"], tokens.customer("bob"))
    # Two stores' tablets, named alike.
    tablet = await send(client, V2_TABLET, store["id"], tokens.store(store["id"], sub="tablet"))
    other_tablet = await send(
        client, V2_TABLET, other["id"], tokens.store(other["id"], sub="tablet"), body=V2_TABLET.body(3)
    )

    answers = [alice, bob, tablet, other_tablet]
    assert [a.status_code for a in answers] == [201] * 4
    assert [a.json()["number"] for a in answers] == [1, 2, 3, 1]
    assert not any(REPLAYED in a.headers for a in answers)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * 256, id="256-characters"),
        pytest.param("a b", id="space"),
        pytest.param("a\tb", id="tab"),
        pytest.param("a\x7f", id="delete"),
        pytest.param(b"\xc3\xa9", id="not-ascii"),
    ],
)
async def test_a_key_that_is_not_1_to_255_visible_ascii_characters_is_a_validation_error(
    client: httpx.AsyncClient, store: dict[str, Any], tokens: Tokens, key: str | bytes
) -> None:
    headers: Any = {**tokens.customer("alice"), KEY: key}
    for route in (V2, V3):
        answer = await client.post(route.url(store["id"]), json=route.body(), headers=headers)

        problem = assert_problem(answer, 400, "VALIDATION_ERROR")
        assert [e["field"] for e in problem["errors"]] == [KEY]
    assert await waitings(client, tokens, store["id"]) == []


async def test_a_key_sent_twice_is_a_validation_error_and_the_longest_key_is_fine(
    client: httpx.AsyncClient, store: dict[str, Any], tokens: Tokens
) -> None:
    twice = [*tokens.customer("alice").items(), (KEY, "a"), (KEY, "b")]
    answer = await client.post(V2.url(store["id"]), json=V2.body(), headers=twice)
    assert_problem(answer, 400, "VALIDATION_ERROR")

    longest = "".join(chr(33 + n % 94) for n in range(255))
    assert (await send(client, V2, store["id"], tokens.customer("alice"), key=longest)).status_code == 201
    assert (await send(client, V2, store["id"], tokens.customer("alice"), key=longest)).headers[REPLAYED]


async def test_a_key_is_checked_only_after_the_caller(
    client: httpx.AsyncClient, store: dict[str, Any]
) -> None:
    answer = await client.post(V2.url(store["id"]), json=V2.body(), headers={KEY: ""})
    assert_problem(answer, 401)


async def test_a_refusal_that_decided_nothing_leaves_the_key_free(
    client: httpx.AsyncClient, make_store: Any, tokens: Tokens
) -> None:
    store = await make_store(maxPartySize=4)
    alice = tokens.customer("alice")
    too_many = await send(client, V2, store["id"], alice, body=V2.body(party_size=6))
    assert_problem(too_many, 400, "VALIDATION_ERROR")
    unknown = await send(client, V2, store["id"] + 100, alice)
    assert_problem(unknown, 404, "STORE_NOT_FOUND")

    # Not a retry of a decision: the corrected request is a first one.
    answer = await send(client, V2, store["id"], alice, body=V2.body(party_size=4))

    assert answer.status_code == 201 and REPLAYED not in answer.headers


@pytest.mark.waitline(lock_wait_seconds=0.05)
async def test_a_503_is_not_kept_and_the_retry_registers(
    client: httpx.AsyncClient, container: Container, store: dict[str, Any], tokens: Tokens
) -> None:
    alice = tokens.customer("alice")
    async with container.lock().hold(store_lock_key(store["id"]), wait_time=1, lease_time=None):
        busy = await send(client, V2, store["id"], alice)
    assert_problem(busy, 503, "LOCK_TIMEOUT")

    retried = await send(client, V2, store["id"], alice)

    assert retried.status_code == 201 and REPLAYED not in retried.headers
    assert (await send(client, V2, store["id"], alice)).headers[REPLAYED] == "true"


@pytest.mark.parametrize("route", [pytest.param(V2, id="v2"), pytest.param(V3, id="v3")])
async def test_twenty_identical_requests_at_once_register_once(
    client: httpx.AsyncClient, store: dict[str, Any], api: Api, tokens: Tokens, route: Route
) -> None:
    alice = route.caller(tokens, store["id"])

    answers = await asyncio.gather(*(send(client, route, store["id"], alice) for _ in range(20)))

    decided = [a for a in answers if a.status_code == route.status]
    busy = [a for a in answers if a.status_code != route.status]
    assert decided, [a.status_code for a in answers]
    assert len({a.content for a in decided}) == 1
    for answer in busy:
        assert_problem(answer, 409, "IDEMPOTENCY_KEY_IN_PROGRESS")
        assert answer.headers["retry-after"] == "1"
    # Exactly one of them was not a replay: the first answer, given to whoever asks again.
    [first] = [a for a in decided if REPLAYED not in a.headers]
    assert_replay_of(await send(client, route, store["id"], alice), first)
    await settled(api, route, first, alice)
    assert len(await waitings(client, tokens, store["id"])) == 1


async def test_after_24_hours_the_key_is_a_new_one_and_is_swept(
    client: httpx.AsyncClient,
    container: Container,
    clock: SettableClock,
    store: dict[str, Any],
    tokens: Tokens,
) -> None:
    alice = tokens.customer("alice")
    first = await send(client, V2, store["id"], alice)
    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    assert_replay_of(await send(client, V2, store["id"], alice), first)
    assert_problem(await send(client, V2, store["id"], alice, body=V2.body(3)), 422, "IDEMPOTENCY_KEY_REUSED")

    clock.advance(timedelta(seconds=1))
    fresh = await send(client, V2, store["id"], alice, body=V2.body(3))

    assert fresh.status_code == 201 and REPLAYED not in fresh.headers
    assert_waiting(fresh.json(), partySize=3)
    assert fresh.json()["id"] != first.json()["id"]
    # The sweep forgets the keys whose 24 hours have passed: here, the fresh one's.
    idempotency = container.idempotency()
    assert await idempotency.sweep() == 0
    clock.advance(timedelta(hours=24))
    assert await idempotency.sweep() == 1
    assert await idempotency.sweep() == 0


async def test_two_apps_on_one_database_share_the_keys(
    client: httpx.AsyncClient, container: Container, serve: Serve, store: dict[str, Any], tokens: Tokens
) -> None:
    """As two API processes would: each its own engine, pool and lock object, one database."""
    twin = Container()
    twin.settings.override(container.settings())
    twin.clock.override(providers.Object(container.clock()))
    alice, bob = tokens.customer("alice"), tokens.customer("bob")
    async with serve(twin) as other:
        first = await send(client, V2, store["id"], alice)
        assert_replay_of(await send(other, V2, store["id"], alice), first)

        answers = await asyncio.gather(
            *(send(each, V2, store["id"], bob, key="key-2") for each in [client, other] * 10)
        )

    assert {a.status_code for a in answers} <= {201, 409}
    assert len({a.content for a in answers if a.status_code == 201}) == 1
    assert [w["userId"] for w in await waitings(client, tokens, store["id"])] == ["alice", "bob"]


async def test_a_replay_is_counted_as_replayed_not_registered(
    client: httpx.AsyncClient, store: dict[str, Any], tokens: Tokens
) -> None:
    alice = tokens.customer("alice")
    for _ in range(3):
        await send(client, V2, store["id"], alice)

    metrics = (await client.get("/metrics")).text
    counted = {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "waitline_registrations_total" and sample.labels["version"] == "v2"
    }
    assert counted == {"REGISTERED": 1, "REPLAYED": 2}


@pytest.mark.profiles("sqlite")
async def test_the_document_names_the_header_and_the_answers(client: httpx.AsyncClient) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    for route in (V2, V2_TABLET, V3, V3_TABLET):
        operation = document["paths"][route.url(0).replace("/0/", "/{storeId}/")]["post"]
        [header] = [p for p in operation["parameters"] if p["in"] == "header"]
        assert header["name"] == KEY and header["required"] is False
        schema = header["schema"]
        assert (schema["type"], schema["minLength"], schema["maxLength"]) == ("string", 1, 255)
        assert schema["pattern"] == "^[!-~]+$" and "24 hours" in header["description"]
        responses = operation["responses"]
        assert "IDEMPOTENCY_KEY_IN_PROGRESS" in responses["409"]["description"], route
        assert "IDEMPOTENCY_KEY_REUSED" in responses["422"]["description"], route
    codes = document["components"]["schemas"]["ProblemCode"]["enum"]
    assert {"IDEMPOTENCY_KEY_IN_PROGRESS", "IDEMPOTENCY_KEY_REUSED"} <= set(codes)
