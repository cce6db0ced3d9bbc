"""The lock's Redis connection (adapters/lock/wire.py): many tasks' commands pipelined on one
connection, answers matched in order, errors and lost connections reported, never guessed; and
its subscriber. On the real Redis, and on private ones for what a test must break.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ConnectionError, ResponseError

from adapters.lock.wire import Script, Subscriber, Wire
from harness.redis import PrivateRedis, own_keys


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"test:{uuid.uuid4().hex}:"
    async with own_keys(redis_url, prefix):
        yield prefix


@pytest.fixture
def private() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


async def test_many_tasks_get_their_own_answers(redis_url: str, prefix: str) -> None:
    wire = Wire(redis_url)
    try:

        async def one(n: int) -> tuple[int, object, object]:
            await wire.execute("SET", f"{prefix}{n}", str(n))
            return n, await wire.execute("GET", f"{prefix}{n}"), await wire.execute("INCR", f"{prefix}count")

        answers = await asyncio.gather(*(one(n) for n in range(500)))
    finally:
        await wire.close()
    assert all(value == str(n).encode() for n, value, _ in answers)
    assert sorted(count for _, _, count in answers) == list(range(1, 501))  # type: ignore[type-var]


async def test_several_commands_in_one_write_answer_in_order(redis_url: str, prefix: str) -> None:
    wire = Wire(redis_url)
    try:
        answers = await wire.execute_many(
            [
                ("SET", f"{prefix}a", "1"),
                ("INCR", f"{prefix}a"),
                ("GETDEL", f"{prefix}a"),
                ("GET", f"{prefix}a"),
            ]
        )
    finally:
        await wire.close()
    assert answers == [b"OK", 2, b"2", None]


async def test_an_error_answer_is_raised_and_the_next_commands_are_unaffected(
    redis_url: str, prefix: str
) -> None:
    wire = Wire(redis_url)
    try:
        await wire.execute("SET", f"{prefix}text", "not a number")
        with pytest.raises(ResponseError, match="not an integer"):
            await wire.execute("INCR", f"{prefix}text")
        with pytest.raises(ResponseError):
            await wire.execute_many(
                [("INCR", f"{prefix}n"), ("INCR", f"{prefix}text"), ("INCR", f"{prefix}n")]
            )
        assert await wire.execute("GET", f"{prefix}n") == b"2"  # the others in the write ran
        assert await wire.execute("PING") == b"PONG"
    finally:
        await wire.close()


async def test_a_cancelled_caller_does_not_shift_the_answers(redis_url: str, prefix: str) -> None:
    wire = Wire(redis_url)
    try:
        await wire.execute("SET", f"{prefix}k", "v")
        slow = asyncio.create_task(wire.execute("BLPOP", f"{prefix}empty", "0.2"))
        await asyncio.sleep(0.05)
        slow.cancel()
        assert await wire.execute("GET", f"{prefix}k") == b"v"
    finally:
        await wire.close()


async def test_a_lost_connection_fails_what_was_in_flight_and_the_next_command_connects_again(
    private: PrivateRedis,
) -> None:
    wire = Wire(private.url)
    admin = Redis.from_url(private.url)
    try:
        await wire.execute("CLIENT", "SETNAME", "the-wire")
        waiting = asyncio.create_task(wire.execute("BLPOP", "nothing", "5"))
        await asyncio.sleep(0.1)
        await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        with pytest.raises(ConnectionError):
            await waiting
        assert await wire.execute("PING") == b"PONG"
        private.stop()
        with pytest.raises(ConnectionError):
            await wire.execute("PING")
        private.start()
        assert await wire.execute("PING") == b"PONG"
    finally:
        await admin.aclose()
        await wire.close()


async def _protect(server: PrivateRedis) -> None:
    admin = Redis.from_url(server.url)
    await admin.config_set("requirepass", "s3cret")
    await admin.aclose()


async def test_the_url_s_password_and_database_are_used(private: PrivateRedis) -> None:
    await _protect(private)
    base = private.url.removesuffix("/0")
    wire = Wire(base.replace("redis://", "redis://default:s3cret@") + "/3")
    refused = Wire(base.replace("redis://", "redis://default:wrong@") + "/0")
    try:
        await wire.execute("SET", "where", "here")
        info = (await wire.execute("CLIENT", "INFO")).decode()
        assert " db=3 " in info
        with pytest.raises((AuthenticationError, ResponseError)):
            await refused.execute("PING")
    finally:
        await wire.close()
        await refused.close()


async def test_a_script_redis_has_forgotten_is_sent_whole(redis_url: str, private: PrivateRedis) -> None:
    wire = Wire(private.url)
    script = Script(wire, "return redis.call('incrby', KEYS[1], ARGV[1])")
    try:
        assert await script(keys=["n"], args=["2"]) == 2
        assert await script(keys=["n"], args=["3"]) == 5
        await wire.execute("SCRIPT", "FLUSH")
        assert await script(keys=["n"], args=["1"]) == 6
        with pytest.raises(ResponseError):
            await Script(wire, "return redis.call('nope')")(keys=[])
    finally:
        await wire.close()


async def test_the_subscriber_hears_its_channels_and_subscribes_again_after_a_lost_connection(
    private: PrivateRedis,
) -> None:
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    confirmed: asyncio.Queue[str] = asyncio.Queue()
    subscriber = Subscriber(
        private.url, lambda channel, data: heard.put_nowait((channel, data)), confirmed.put_nowait
    )
    subscriber.RETRY = 0.05  # type: ignore[misc]
    admin = Redis.from_url(private.url)
    try:
        subscriber.subscribe("a")
        subscriber.subscribe("b")
        assert {await asyncio.wait_for(confirmed.get(), 5) for _ in range(2)} == {"a", "b"}
        await admin.publish("a", "one")
        await admin.publish("elsewhere", "not ours")
        await admin.publish("b", "two")
        assert [await asyncio.wait_for(heard.get(), 5) for _ in range(2)] == [("a", "one"), ("b", "two")]
        subscriber.unsubscribe("b")
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        assert await asyncio.wait_for(confirmed.get(), 5) == "a"  # again, after connecting again
        await admin.publish("b", "unheard")
        await admin.publish("a", "three")
        assert await asyncio.wait_for(heard.get(), 5) == ("a", "three")
        assert heard.empty()
    finally:
        await admin.aclose()
        with contextlib.suppress(Exception):
            await subscriber.close()


async def test_a_redis_that_stops_answering_fails_the_commands_instead_of_hanging(
    private: PrivateRedis,
) -> None:
    wire = Wire(private.url, patience=0.3)
    admin = Redis.from_url(private.url)
    try:
        assert await wire.execute("PING") == b"PONG"
        await admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")
        started = asyncio.get_running_loop().time()
        with pytest.raises(ConnectionError, match=r"no answer for 0\.3 s"):
            await wire.execute("GET", "anything")
        assert asyncio.get_running_loop().time() - started < 2.5  # well before Redis answers again
        await asyncio.sleep(3.2 - (asyncio.get_running_loop().time() - started))
        assert await wire.execute("PING") == b"PONG"
    finally:
        await admin.aclose()
        await wire.close()


async def test_a_caller_cancelled_while_connecting_does_not_fail_the_others(private: PrivateRedis) -> None:
    await _protect(private)
    wire = Wire(private.url.replace("redis://", "redis://default:s3cret@"))
    try:
        first = asyncio.create_task(wire.execute("PING"))
        others = [asyncio.create_task(wire.execute("ECHO", str(n))) for n in range(5)]
        await asyncio.sleep(0)
        first.cancel()
        assert await asyncio.gather(*others) == [str(n).encode() for n in range(5)]
    finally:
        await wire.close()


async def test_commands_behind_a_refused_database_never_run_in_another(private: PrivateRedis) -> None:
    wire = Wire(private.url.removesuffix("/0") + "/99")  # the server has 16 databases
    admin = Redis.from_url(private.url)
    try:
        answers = await asyncio.gather(
            *(wire.execute("SET", f"key{n}", "value") for n in range(3)), return_exceptions=True
        )
        assert all(isinstance(answer, ResponseError) for answer in answers), answers
        assert await admin.dbsize() == 0
    finally:
        await admin.aclose()
        await wire.close()


async def test_a_closed_subscriber_leaves_no_subscription_behind(redis_url: str) -> None:
    channel = f"test:{uuid.uuid4().hex}"
    confirmed = asyncio.Event()
    subscriber = Subscriber(redis_url, lambda channel, data: None, lambda channel: confirmed.set())
    admin = Redis.from_url(redis_url)
    try:
        subscriber.subscribe(channel)
        await asyncio.wait_for(confirmed.wait(), 5)
        assert await admin.pubsub_numsub(channel) == [(channel.encode(), 1)]
        await subscriber.close()
        await asyncio.sleep(0.05)
        assert await admin.pubsub_numsub(channel) == [(channel.encode(), 0)]
        subscriber.subscribe(channel)  # after close: nothing
        await asyncio.sleep(0.05)
        assert await admin.pubsub_numsub(channel) == [(channel.encode(), 0)]
    finally:
        await admin.aclose()


async def test_a_server_that_closes_every_connection_fails_commands_instead_of_hanging() -> None:
    """E.g. a proxy whose Redis is down: it accepts, then closes without a word (from a thread of
    its own, so the close can come at any moment of the client's loop)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def close_every_connection() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                connection.close()

    threading.Thread(target=close_every_connection, daemon=True).start()
    wire = Wire(f"redis://127.0.0.1:{port}/0", patience=0.2)
    try:
        for _ in range(10):
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(wire.execute("PING"), 3)
    finally:
        await wire.close()
        listener.close()
