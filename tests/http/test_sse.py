"""Live streams (SSE): a snapshot first, then changes; ids, replay on reconnect, and the end.

Every read is bounded (see httpkit.SseReader): a stream that stays silent fails the test.
"""

from __future__ import annotations

import asyncio

import pytest
from dependency_injector import providers

from adapters.notify.local import LocalNotifier
from adapters.status.local import LocalRequestStatuses
from adapters.status.redis import RedisRequestStatuses
from application.registration import store_lock_key
from harness.httpkit import Api, Tokens, assert_problem, assert_waiting, sse


async def _two_in_line(api: Api, store_id: int) -> tuple[dict, dict]:
    ahead = (await api.join_v2(store_id, "ahead")).json()
    mine = (await api.join_v2(store_id, "me")).json()
    return ahead, mine


async def test_a_waiting_stream_starts_with_a_snapshot_with_rank(client, store, api: Api, tokens: Tokens):
    _, mine = await _two_in_line(api, store["id"])

    async with sse(client, f"/waitings/{mine['id']}/events", tokens.customer("me")) as stream:
        snapshot = await stream.expect("snapshot")

    assert_waiting(snapshot.data, id=mine["id"], status="WAITING", rank=2, estimatedWaitMinutes=5)


async def test_rank_then_called_then_seated_and_the_stream_ends(client, store, api: Api, tokens: Tokens):
    ahead, mine = await _two_in_line(api, store["id"])

    async with sse(client, f"/waitings/{mine['id']}/events", tokens.customer("me")) as stream:
        await stream.expect("snapshot")

        await api.act(store["id"], ahead["id"], "cancel")
        rank = await stream.expect("rank")
        assert rank.data == {"rank": 1, "estimatedWaitMinutes": 0}

        await api.act(store["id"], mine["id"], "call")
        called = await stream.expect("called")
        assert_waiting(called.data, id=mine["id"], status="CALLED")

        await api.act(store["id"], mine["id"], "seat")
        seated = await stream.expect("seated")
        assert seated.data["status"] == "SEATED"
        await stream.ends()

    # Ids grow along the stream, so a client can say where it stopped.
    assert _order(rank.id) < _order(called.id) < _order(seated.id)


@pytest.mark.parametrize(
    ("steps", "terminal"),
    [(["cancel"], "cancelled"), (["call", "no-show"], "no_show"), (["call", "cancel"], "cancelled")],
)
async def test_the_stream_ends_after_any_terminal_event(
    client, store, api: Api, tokens: Tokens, steps, terminal
):
    mine = (await api.join_v2(store["id"], "me")).json()

    async with sse(client, f"/waitings/{mine['id']}/events", tokens.customer("me")) as stream:
        await stream.expect("snapshot")
        for step in steps:
            await api.act(store["id"], mine["id"], step)
        if steps[0] == "call":
            await stream.expect("called")
        await stream.expect(terminal)
        await stream.ends()


async def test_the_customers_own_cancel_ends_their_stream(client, store, api: Api, tokens: Tokens):
    mine = (await api.join_v2(store["id"], "me")).json()
    async with sse(client, f"/waitings/{mine['id']}/events", tokens.customer("me")) as stream:
        await stream.expect("snapshot")
        await client.post(f"/waitings/{mine['id']}/cancel", headers=tokens.customer("me"))
        await stream.expect("cancelled")
        await stream.ends()


async def test_a_finished_waiting_streams_its_snapshot_and_ends(client, store, api: Api, tokens: Tokens):
    mine = (await api.join_v2(store["id"], "me")).json()
    await api.act(store["id"], mine["id"], "cancel")

    async with sse(client, f"/waitings/{mine['id']}/events", tokens.customer("me")) as stream:
        snapshot = await stream.expect("snapshot")
        await stream.ends()

    assert snapshot.data["status"] == "CANCELLED"


async def test_everyone_behind_hears_their_new_rank(client, store, api: Api, tokens: Tokens):
    first = (await api.join_v2(store["id"], "a")).json()
    second = (await api.join_v2(store["id"], "b")).json()
    third = (await api.join_v2(store["id"], "c")).json()

    async with (
        sse(client, f"/waitings/{second['id']}/events", tokens.customer("b")) as b,
        sse(client, f"/waitings/{third['id']}/events", tokens.customer("c")) as c,
        sse(client, f"/waitings/{first['id']}/events", tokens.customer("a")) as a,
    ):
        for stream in (a, b, c):
            await stream.expect("snapshot")
        await api.act(store["id"], first["id"], "call")

        assert (await b.expect("rank")).data["rank"] == 1
        assert (await c.expect("rank")).data["rank"] == 2
        # The one called hears `called`, not a rank.
        assert (await a.expect("called")).data["status"] == "CALLED"


async def test_staff_and_admin_may_follow_a_waiting(client, store, api: Api, tokens: Tokens):
    mine = (await api.join_v2(store["id"], "me")).json()
    for headers in (tokens.store(store["id"]), tokens.admin):
        async with sse(client, f"/waitings/{mine['id']}/events", headers) as stream:
            assert (await stream.expect("snapshot")).data["id"] == mine["id"]


async def test_reconnecting_with_last_event_id_replays_what_was_missed(
    client, store, api: Api, tokens: Tokens
):
    ahead, mine = await _two_in_line(api, store["id"])
    url = f"/waitings/{mine['id']}/events"
    async with sse(client, url, tokens.customer("me")) as stream:
        await stream.expect("snapshot")
        await api.act(store["id"], ahead["id"], "cancel")
        seen = await stream.expect("rank")

    # While the client is away: called. It comes back saying where it stopped.
    await api.act(store["id"], mine["id"], "call")
    async with sse(client, url, tokens.customer("me"), last_event_id=seen.id) as stream:
        replayed = await stream.expect("called")  # no snapshot: the missed event itself
        assert _order(replayed.id) > _order(seen.id)

        await api.act(store["id"], mine["id"], "seat")
        await stream.expect("seated")
        await stream.ends()


async def test_reconnecting_after_the_end_replays_the_terminal_event_and_ends(
    client, store, api: Api, tokens: Tokens
):
    mine = (await api.join_v2(store["id"], "me")).json()
    url = f"/waitings/{mine['id']}/events"
    async with sse(client, url, tokens.customer("me")) as stream:
        snapshot = await stream.expect("snapshot")
    await api.act(store["id"], mine["id"], "cancel")

    async with sse(client, url, tokens.customer("me"), last_event_id=snapshot.id) as stream:
        await stream.expect("cancelled")
        await stream.ends()


@pytest.mark.parametrize("last_event_id", ["not-a-number", "999999999", "-5", ""])
async def test_an_unknown_last_event_id_gets_a_fresh_snapshot(
    client, store, api: Api, tokens: Tokens, last_event_id
):
    ahead, mine = await _two_in_line(api, store["id"])
    await api.act(store["id"], ahead["id"], "cancel")

    async with sse(client, f"/waitings/{mine['id']}/events", tokens.customer("me"), last_event_id) as stream:
        snapshot = await stream.expect("snapshot")

    assert snapshot.data["rank"] == 1  # the current state, not the history


async def test_a_last_event_id_older_than_the_history_gets_a_fresh_snapshot(container, serve, tokens: Tokens):
    # A notifier keeping only the last 2 events (and none for time), so history runs out quickly.
    container.notifier.override(providers.Singleton(LocalNotifier, keep_events=2, keep_seconds=0))
    async with serve(container) as client:
        api = Api(client, tokens)
        store = (
            await client.post("/stores", json={"name": "A", "waitingOpen": True}, headers=tokens.admin)
        ).json()
        ahead = [(await api.join_v2(store["id"], f"a{i}")).json() for i in range(3)]
        mine = (await api.join_v2(store["id"], "me")).json()
        url = f"/waitings/{mine['id']}/events"
        async with sse(client, url, tokens.customer("me")) as stream:
            snapshot = await stream.expect("snapshot")
        for waiting in ahead:  # three rank events: the first falls out of the history
            await api.act(store["id"], waiting["id"], "cancel")

        async with sse(client, url, tokens.customer("me"), last_event_id=snapshot.id) as stream:
            fresh = await stream.expect("snapshot")

    assert fresh.data["rank"] == 1


@pytest.mark.waitline(keepalive_seconds=0.1)
async def test_an_idle_stream_gets_keep_alive_comments_only(client, store, api: Api, tokens: Tokens):
    mine = (await api.join_v2(store["id"], "me")).json()

    async with sse(client, f"/waitings/{mine['id']}/events", tokens.customer("me")) as stream:
        await stream.expect("snapshot")
        assert (await stream.line(2)).startswith(":")
        # A comment and nothing else: a `data:` line would make browsers fire an empty message.
        assert await stream.line(2) == ""
        await stream.silent_for(0.3)
        assert stream.comments, "several keep-alives should have passed by now"

        await api.act(store["id"], mine["id"], "call")
        assert (await stream.expect("called")).data["status"] == "CALLED"


async def test_the_store_stream_hears_registrations_from_every_channel(
    client, store, api: Api, tokens: Tokens
):
    await api.join_v2(store["id"], "early")

    async with sse(client, f"/stores/{store['id']}/events", tokens.store(store["id"])) as stream:
        snapshot = await stream.expect("snapshot")
        assert snapshot.data["store"]["id"] == store["id"]
        assert [item["number"] for item in snapshot.data["items"]] == [1]

        await api.join_v2(store["id"], "a")
        # The store's events carry the Waiting (unranked: the store's list has the ranks).
        assert_waiting((await stream.expect("registered")).data, ranked=False, number=2, channel="USER")
        await api.join_app_v2(store["id"], name="김민수")
        guest = (await stream.expect("registered")).data
        assert guest["name"] == "김민수" and guest["number"] == 3  # the staff see guests in full
        await api.join_v3(store["id"], "b")
        assert (await stream.expect("registered")).data["number"] == 4


async def test_the_store_stream_hears_moves_and_switches_and_does_not_end(
    client, store, api: Api, tokens: Tokens
):
    waiting = (await api.join_v2(store["id"], "a")).json()

    async with sse(client, f"/stores/{store['id']}/events", tokens.admin) as stream:
        await stream.expect("snapshot")
        await api.act(store["id"], waiting["id"], "call")
        assert (await stream.expect("called")).data["id"] == waiting["id"]
        await api.act(store["id"], waiting["id"], "seat")
        await stream.expect("seated")
        await client.post(f"/stores/{store['id']}/waiting/close", headers=tokens.admin)
        assert (await stream.expect("closed")).data["waitingOpen"] is False
        await stream.silent_for(0.2)  # still open: a store's stream has no end


async def test_the_store_stream_replays_after_a_reconnect(client, store, api: Api, tokens: Tokens):
    url = f"/stores/{store['id']}/events"
    async with sse(client, url, tokens.store(store["id"])) as stream:
        snapshot = await stream.expect("snapshot")
    await api.join_v2(store["id"], "a")
    await api.join_v2(store["id"], "b")

    async with sse(client, url, tokens.store(store["id"]), last_event_id=snapshot.id) as stream:
        assert (await stream.expect("registered")).data["number"] == 1
        assert (await stream.expect("registered")).data["number"] == 2


async def test_a_request_stream_gives_one_registered_event_and_ends(client, store, api: Api, tokens: Tokens):
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    await api.outcome(trace, tokens.customer("a"))

    # Already decided: the event comes at once.
    async with sse(client, f"/v3/waiting-requests/{trace}/events", tokens.customer("a")) as stream:
        event = await stream.expect("registered")
        await stream.ends()

    assert event.id == trace
    assert event.data["status"] == "REGISTERED" and event.data["traceId"] == trace
    assert_waiting(event.data["waiting"], number=1)


async def test_a_decided_request_no_longer_in_memory_is_answered_at_once(
    client, container, store, api: Api, tokens: Tokens
):
    # After a restart only the database knows the outcome; the stream must not wait for news.
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    await api.outcome(trace, tokens.customer("a"))
    await _lose(container.statuses(), trace)

    async with sse(client, f"/v3/waiting-requests/{trace}/events", tokens.customer("a")) as stream:
        assert (await stream.expect("registered", within=2)).data["waiting"]["number"] == 1
        await stream.ends()


async def test_a_request_stream_gives_one_rejected_event_and_ends(
    client, make_store, api: Api, tokens: Tokens
):
    store = await make_store(waitingOpen=False)
    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]

    async with sse(client, f"/v3/waiting-requests/{trace}/events", tokens.admin) as stream:
        event = await stream.expect("rejected")
        await stream.ends()

    assert event.data["status"] == "REJECTED" and event.data["reason"] == "WAITING_CLOSED"
    assert "waiting" not in event.data


@pytest.mark.waitline(lock_wait_seconds=0.05)
async def test_a_request_stream_waits_for_the_decision(client, container, store, api: Api, tokens: Tokens):
    # The test takes the store's lock itself, so the worker cannot decide until it lets go.
    taken, let_go = asyncio.Event(), asyncio.Event()

    async def hold_the_store() -> None:
        async with container.lock().hold(store_lock_key(store["id"]), wait_time=1, lease_time=None):
            taken.set()
            await let_go.wait()

    holder = asyncio.create_task(hold_the_store())
    await taken.wait()
    try:
        trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
        async with sse(client, f"/v3/waiting-requests/{trace}/events", tokens.customer("a")) as stream:
            await stream.silent_for(0.3)  # still QUEUED: nothing to say yet
            let_go.set()
            assert (await stream.expect("registered")).data["waiting"]["number"] == 1
            await stream.ends()
    finally:
        let_go.set()
        await holder


async def test_the_guest_stream_is_masked(client, store, api: Api):
    guest = (await api.join_app_v2(store["id"], name="김민수", phone="010-1234-5678")).json()
    url = f"/guest/waitings/{guest['statusToken']}/events"

    async with sse(client, url) as stream:  # no Authorization: the token is the key
        snapshot = await stream.expect("snapshot")
        await api.act(store["id"], guest["id"], "call")
        called = await stream.expect("called")
        await client.post(f"/guest/waitings/{guest['statusToken']}/cancel")
        cancelled = await stream.expect("cancelled")
        await stream.ends()

    for event in (snapshot, called, cancelled):
        assert event.data["name"] == "김*수"
        assert event.data["phoneNumber"] == "010-****-5678"
        assert "statusToken" not in event.data
    assert snapshot.data["rank"] == 1


async def test_the_guest_stream_replays_masked_after_a_reconnect(client, store, api: Api):
    guest = (await api.join_app_v2(store["id"], name="김민수")).json()
    url = f"/guest/waitings/{guest['statusToken']}/events"
    async with sse(client, url) as stream:
        snapshot = await stream.expect("snapshot")
    await api.act(store["id"], guest["id"], "call")

    async with sse(client, url, last_event_id=snapshot.id) as stream:
        called = await stream.expect("called")

    assert called.data["name"] == "김*수" and "statusToken" not in called.data


async def _lose(statuses: object, trace: str) -> None:
    """As a restart (or the status's expiry) would: only the request log still knows the outcome."""
    if isinstance(statuses, RedisRequestStatuses):
        await statuses._client.delete(statuses.key(trace))
    else:
        assert isinstance(statuses, LocalRequestStatuses)
        del statuses._statuses[trace]


def _order(event_id: str | None) -> tuple[int, ...]:
    """Event ids grow within a stream: plain numbers in process, "<ms>-<seq>" on Redis Streams."""
    assert event_id
    return tuple(int(part) for part in event_id.split("-"))


async def test_the_store_stream_tells_each_registration_with_the_rank_its_own_stream_shows(
    client, store, api: Api, tokens: Tokens
):
    url = f"/stores/{store['id']}/events"
    async with sse(client, url, tokens.store(store["id"])) as stream:
        await stream.expect("snapshot")
        first = (await api.join_v2(store["id"], "a")).json()
        trace = (await api.join_v3(store["id"], "b")).json()["traceId"]
        second = (await api.outcome(trace, tokens.admin))["waiting"]
        told = [(await stream.expect("registered")).data for _ in range(2)]
    assert [(e["number"], e["rank"], e["estimatedWaitMinutes"]) for e in told] == [(1, 1, 0), (2, 2, 5)]
    assert (told[0]["rank"], told[1]["rank"]) == (first["rank"], second["rank"])
    assert stream.retry == 3000  # told when to reconnect


@pytest.mark.waitline(max_streams=2)
async def test_a_process_keeps_at_most_its_streams_open_and_says_so(client, store, api: Api, tokens: Tokens):
    url = f"/stores/{store['id']}/events"
    async with sse(client, url, tokens.store(store["id"])) as one, sse(client, url, tokens.admin) as two:
        await one.expect("snapshot")
        await two.expect("snapshot")
        refused = await client.get(url, headers=tokens.admin)
        assert_problem(refused, 503, "UNAVAILABLE")
        assert int(refused.headers["retry-after"]) >= 1
    async with sse(client, url, tokens.admin) as again:  # closed ones are counted out
        await again.expect("snapshot")
