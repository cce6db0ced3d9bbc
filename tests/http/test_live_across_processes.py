"""Live events (SSE) across real `waitline serve` processes on Redis Streams, PostgreSQL and the
Redis lock: a stream opened on one process hears what another one did, a client reconnecting to
another process gets exactly what it missed, and one process serves a crowd of subscribers
without a slow one holding back the rest."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from test_two_processes import SECRET, authenticator, bearer, ready, servers

from application.access import Role
from harness.httpkit import SseReader, midday_zone, sse
from harness.postgres import empty_database, run_apart
from harness.redis import own_keys

SUBSCRIBERS = 1000
LATER_EVENTS = 20
# Hang bounds, not speed targets: generous for 2 cores.
DELIVERY_BOUND = 30.0
OPEN_BOUND = 60.0
RSS_LIMIT_KB = 600 * 1024
# Streams being opened at once: each takes a database connection for its snapshot (10 + 10
# overflow per process, 5 s to get one); far more in flight on 2 busy cores timed some out.
IN_FLIGHT = 20


def staff(store: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {authenticator.token(Role.STORE, 'tablet', store)}"}


def environment(database: str, redis_url: str, prefix: str, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAITLINE_KAFKA")}
    return {
        **env,
        "WAITLINE_DATABASE_URL": database,
        "WAITLINE_REDIS_URL": redis_url,
        "WAITLINE_REDIS_PREFIX": prefix,
        "WAITLINE_JWT_SECRET": SECRET,
        "WAITLINE_LOCK_WAIT_SECONDS": "30",
        "WAITLINE_LOG_LEVEL": "INFO",
        **more,
    }


async def make_store(client: httpx.AsyncClient, base: str) -> int:
    body = {"name": "Live", "waitingOpen": True, "timeZone": midday_zone()}
    made = await client.post(f"{base}/stores", json=body, headers=bearer(Role.ADMIN, "root"))
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def join(client: httpx.AsyncClient, base: str, store: int, customer: str) -> dict[str, Any]:
    answer = await client.post(
        f"{base}/v2/stores/{store}/waitings", json={"partySize": 2}, headers=bearer(Role.CUSTOMER, customer)
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def act(client: httpx.AsyncClient, base: str, store: int, waiting: int, action: str) -> None:
    answer = await client.post(f"{base}/stores/{store}/waitings/{waiting}/{action}", headers=staff(store))
    assert answer.status_code == 200, answer.text


async def expect(stream: SseReader, event: str, **fields: Any) -> str:
    """The next event is `event` with these data fields; returns its id."""
    got = await stream.expect(event)
    for name, value in fields.items():
        assert got.data.get(name) == value, (event, name, got.data)
    assert got.id is not None
    return got.id


def order(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


async def test_streams_opened_on_one_process_hear_the_other_and_resume_on_it(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    run_apart(empty_database(postgres_url))
    prefix = f"test:{uuid.uuid4().hex}:"
    env = environment(postgres_url, redis_url, prefix)
    async with own_keys(redis_url, prefix), httpx.AsyncClient(timeout=30) as client:
        with servers(2, env, tmp_path) as bases:
            for base, log in bases:
                await ready(client, base, log)
            [a, _], [b, _] = bases
            store = await make_store(client, a)
            store_url, seen = f"/stores/{store}/events", []

            async with sse(client, f"{a}{store_url}", staff(store)) as on_a:
                snapshot = await on_a.expect("snapshot")
                assert snapshot.data["items"] == []
                assert on_a.retry is not None  # the reconnection hint comes first
                first = await join(client, b, store, "first")
                second = await join(client, b, store, "second")
                me = await join(client, b, store, "me")
                for number in (1, 2, 3):
                    seen.append(await expect(on_a, "registered", number=number))

                mine_url = f"/waitings/{me['id']}/events"
                async with sse(client, f"{a}{mine_url}", bearer(Role.CUSTOMER, "me")) as mine:
                    assert (await mine.expect("snapshot")).data["rank"] == 3
                    # Someone ahead cancels (themselves, on B): I move up.
                    cancelled = await client.post(
                        f"{b}/waitings/{first['id']}/cancel", headers=bearer(Role.CUSTOMER, "first")
                    )
                    assert cancelled.status_code == 200, cancelled.text
                    assert (await mine.expect("rank")).data["rank"] == 2
                    seen.append(await expect(on_a, "cancelled", id=first["id"], status="CANCELLED"))
                    # The one ahead is called and seated by the staff on B.
                    await act(client, b, store, second["id"], "call")
                    assert (await mine.expect("rank")).data["rank"] == 1
                    seen.append(await expect(on_a, "called", id=second["id"]))
                    await act(client, b, store, second["id"], "seat")
                    seen.append(await expect(on_a, "seated", id=second["id"]))
                    await act(client, b, store, me["id"], "call")
                    called = await expect(mine, "called", id=me["id"], status="CALLED")
                    seen.append(await expect(on_a, "called", id=me["id"]))
                    await mine.silent_for(0.3)
                await on_a.silent_for(0.3)
            assert [order(i) for i in seen] == sorted({order(i) for i in seen}), seen

            # Away from both streams: more happens, on A this time.
            later = await join(client, a, store, "later")
            await act(client, a, store, me["id"], "seat")

            # Back on B with Last-Event-ID: exactly what was missed, in order, no snapshot.
            async with sse(client, f"{b}{mine_url}", bearer(Role.CUSTOMER, "me"), called) as mine:
                seated = await expect(mine, "seated", id=me["id"], status="SEATED")
                await mine.ends()
            assert order(seated) > order(called)
            async with sse(client, f"{b}{store_url}", staff(store), seen[-1]) as on_b:
                missed = [
                    await expect(on_b, "registered", id=later["id"], number=4),
                    await expect(on_b, "seated", id=me["id"]),
                ]
                await on_b.silent_for(0.5)
            assert order(seen[-1]) < order(missed[0]) < order(missed[1])

            # V3 accepted on A, followed on B: whichever process's queue worker decides it.
            accepted = await client.post(
                f"{a}/v3/stores/{store}/waitings", json={"partySize": 2}, headers=bearer(Role.CUSTOMER, "v3")
            )
            assert accepted.status_code == 202, accepted.text
            trace = accepted.json()["traceId"]
            request_url = f"{b}/v3/waiting-requests/{trace}/events"
            async with sse(client, request_url, bearer(Role.CUSTOMER, "v3")) as request:
                registered = await request.expect("registered")
                await request.ends()
            assert registered.data["status"] == "REGISTERED" and registered.data["traceId"] == trace
            assert registered.data["waiting"]["number"] == 5


# A crowd on one process: raw HTTP/1.1 over asyncio streams (1,000 httpx streams would be slow).


@dataclass
class RawSubscriber:
    """One SSE connection, read by its own task: the events (type, id, data) in arrival order."""

    events: list[tuple[str, str | None, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    writer: asyncio.StreamWriter | None = None
    failure: BaseException | None = None
    heard: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at the first event, or when the connection fails."""

    async def run(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        try:
            reader, self.writer = await asyncio.open_connection(host, port)
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            self.writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n{head}\r\n".encode()
            )
            status = await reader.readline()
            assert status.split()[1] == b"200", status
            chunked = False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                chunked |= line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower()
            await self._read(reader, chunked)
            self.failure = EOFError(f"the stream ended after {self.events}")  # a store's never does
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self.failure = error
            raise
        finally:
            self.heard.set()

    async def _read(self, reader: asyncio.StreamReader, chunked: bool) -> None:
        text = b""
        event: dict[str, str] = {}
        data: list[str] = []
        while True:
            if chunked:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    return
                text += await reader.readexactly(size + 2)
                text = text[:-2]
            else:
                more = await reader.read(65536)
                if not more:
                    return
                text += more
            while b"\n" in text:
                raw, text = text.split(b"\n", 1)
                line = raw.decode().rstrip("\r")
                if line == "":
                    if data:
                        self.events.append(
                            (event.get("event", "message"), event.get("id"), json.loads("\n".join(data)))
                        )
                        self.heard.set()
                    event, data = {}, []
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "data":
                        data.append(value)
                    else:
                        event[name] = value

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def server_pid(port: int) -> int:
    """The `serve` child of this test process listening on `port`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if parent == os.getpid() and b"serve" in argv and str(port).encode() in argv:
                return int(entry.name)
    raise AssertionError(f"no serve process on port {port}")


def unsent_bytes(server_port: int, client_port: int) -> int | None:
    """The server socket's send queue towards the client (bytes the kernel holds for it)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
        if int(local, 16) == server_port and int(remote, 16) == client_port:
            return int(fields[4].split(":")[0], 16)
    return None


def enough_files(want: int = 4096) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        top = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= want, "need at least 4096 open files"


async def all_have(subscribers: list[RawSubscriber], count: int, within: float) -> float:
    """Wait until every subscriber has `count` events; the seconds it took."""
    started = time.monotonic()
    while True:
        failed = [s.failure for s in subscribers if s.failure is not None]
        assert not failed, failed[:3]
        short = sum(len(s.events) < count for s in subscribers)
        if not short:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"{short} of {len(subscribers)} still lack event {count}"
        await asyncio.sleep(0.05)


async def test_a_thousand_subscribers_on_one_process_all_hear_and_a_stuck_one_holds_none_back(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    enough_files()  # before the server starts: it inherits the limit
    run_apart(empty_database(postgres_url))
    prefix = f"test:{uuid.uuid4().hex}:"
    env = environment(postgres_url, redis_url, prefix, WAITLINE_MAX_STREAMS=str(SUBSCRIBERS + 100))
    crowd = [RawSubscriber() for _ in range(SUBSCRIBERS)]
    stuck = socket.socket()
    async with own_keys(redis_url, prefix), httpx.AsyncClient(timeout=30) as client:
        with servers(1, env, tmp_path) as [(base, log)]:
            try:
                await ready(client, base, log)
                host, port = urlsplit(base).hostname or "", urlsplit(base).port or 0
                pid = server_pid(port)
                store = await make_store(client, base)
                path, headers = f"/stores/{store}/events", staff(store)
                rss_before = rss_kb(pid)

                # Open them all, IN_FLIGHT at a time; each starts with its snapshot.
                started, gate = time.monotonic(), asyncio.Semaphore(IN_FLIGHT)

                async def open_one(subscriber: RawSubscriber) -> None:
                    async with gate:
                        subscriber.task = asyncio.create_task(subscriber.run(host, port, path, headers))
                        await subscriber.heard.wait()

                async with asyncio.timeout(OPEN_BOUND):
                    await asyncio.gather(*(open_one(s) for s in crowd))
                await all_have(crowd, 1, within=OPEN_BOUND)
                opened = time.monotonic() - started
                assert all(s.events[0][0] == "snapshot" for s in crowd)
                rss_open = rss_kb(pid)

                # One more that never reads, with a tiny receive window.
                stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                stuck.settimeout(5)
                stuck.connect((host, port))
                stuck.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Authorization: {headers['Authorization']}\r\n\r\n".encode()
                )

                t0 = time.monotonic()
                await join(client, base, store, "first")
                await all_have(crowd, 2, within=DELIVERY_BOUND)
                first = time.monotonic() - t0
                assert {s.events[1][0] for s in crowd} == {"registered"}

                t1 = time.monotonic()
                for n in range(LATER_EVENTS):
                    await join(client, base, store, f"later-{n}")
                requested = time.monotonic() - t1
                await all_have(crowd, 2 + LATER_EVENTS, within=DELIVERY_BOUND)
                burst = time.monotonic() - t1
                rss_after = rss_kb(pid)
                unread = unsent_bytes(port, stuck.getsockname()[1])

                numbers = list(range(1, LATER_EVENTS + 2))
                for subscriber in crowd:
                    assert [e[0] for e in subscriber.events[1:]] == ["registered"] * (LATER_EVENTS + 1)
                    assert [e[2]["number"] for e in subscriber.events[1:]] == numbers
                    ids = [order(e[1]) for e in subscriber.events[1:] if e[1]]
                    assert ids == sorted(set(ids)) and len(ids) == LATER_EVENTS + 1
                assert rss_after < RSS_LIMIT_KB, f"serve RSS {rss_after} kB"
                print(
                    f"\n{SUBSCRIBERS} streams opened in {opened:.2f} s; first event to all {first:.2f} s after "
                    f"its request was sent; {LATER_EVENTS} more requests took {requested:.2f} s, all delivered "
                    f"{burst:.2f} s after the first was sent; the stuck client's unsent bytes on the server: "
                    f"{unread}; serve RSS kB before {rss_before}, with streams {rss_open}, after {rss_after}"
                )
            finally:
                stuck.close()
                for subscriber in crowd:
                    subscriber.close()
                await asyncio.gather(*(s.task for s in crowd if s.task), return_exceptions=True)
