"""Plumbing for the HTTP tests: an in-loop ASGI transport, an SSE reader, problem assertions.

Why not litestar's AsyncTestClient: it runs the app in a blocking portal on another thread and
buffers every response until it is complete. A request blocks the test's event loop, so
`asyncio.gather` of 300 requests runs them one by one, and an SSE stream (which never completes
on its own) hangs the test. The transport below runs each request as a task on the test's own
loop and hands the body over chunk by chunk, so bursts are truly concurrent and streams can be
read event by event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

import httpx
import jwt
from litestar.types import ASGIApp, Message

from application.access import Role
from entrypoints.http.auth import Authenticator

SECRET = "http-tests-secret-" + "s" * 64
Headers = dict[str, str]
PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}
STEP_TIMEOUT = 5.0


class _Body(httpx.AsyncByteStream):
    def __init__(
        self,
        chunks: asyncio.Queue[bytes | None],
        task: asyncio.Task[None],
        gone: asyncio.Event,
        read_timeout: float | None,
    ):
        self._chunks, self._task, self._gone, self._read_timeout = chunks, task, gone, read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await asyncio.wait_for(self._chunks.get(), self._read_timeout)
            except TimeoutError:
                # Like a real socket read: a hung app fails the test instead of hanging it.
                raise httpx.ReadTimeout(f"no body chunk within {self._read_timeout} s") from None
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        # The client hung up: tell the app (it ends its stream), then make sure it has.
        self._gone.set()
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class InLoopTransport(httpx.AsyncBaseTransport):
    """Runs the ASGI app on the caller's event loop, answering as soon as the headers are sent."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        url = request.url
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "client": ("127.0.0.1", 50000),
            "server": (url.host, url.port or 80),
            "extensions": {},
        }
        started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        gone = asyncio.Event()
        body_sent = False

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body", False):
                    chunks.put_nowait(None)

        async def run() -> None:
            try:
                await self._app(scope, receive, send)  # type: ignore[arg-type]
            finally:
                chunks.put_nowait(None)

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        read_timeout = request.extensions.get("timeout", {}).get("read")
        await asyncio.wait({started, task}, timeout=read_timeout, return_when=asyncio.FIRST_COMPLETED)
        if not started.done() and not task.done():
            task.cancel()
            raise httpx.ReadTimeout(f"no response within {read_timeout} s", request=request)
        if not started.done():
            task.result()  # the app failed before answering: let the test see why
            raise AssertionError("the app finished without sending a response")
        start = started.result()
        return httpx.Response(
            start["status"],
            headers=[(name, value) for name, value in start.get("headers", [])],
            stream=_Body(chunks, task, gone, read_timeout),
            request=request,
        )

    async def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The answer is an RFC 9457 problem with the contract's fields; returns its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    if code is not None:
        assert body["code"] == code, body
    if status == 400:
        assert isinstance(body.get("errors"), list), body
    if status in (429, 503):
        assert int(response.headers["retry-after"]) >= 0
    return body


@dataclass
class SseEvent:
    event: str | None
    id: str | None
    data: Any


@dataclass
class SseReader:
    """Reads one SSE response event by event; every wait is bounded."""

    response: httpx.Response
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    """The reconnection delay the server asked for (ms)."""

    def __post_init__(self) -> None:
        self._lines = self.response.aiter_lines()
        self._pending: asyncio.Future[str] | None = None

    async def line(self, within: float = STEP_TIMEOUT) -> str | None:
        """The next raw line; None once the stream has ended; TimeoutError if none came in time.

        The read runs as its own task and survives a timeout: cancelling a read half-way would
        break the response's line iterator for good.
        """
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self._lines))
        done, _ = await asyncio.wait({self._pending}, timeout=within)
        if not done:
            raise TimeoutError(f"no line within {within} s")
        read, self._pending = self._pending, None
        try:
            return read.result()
        except StopAsyncIteration:
            return None

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(BaseException):
                await self._pending

    async def next(self, within: float = STEP_TIMEOUT) -> SseEvent | None:
        """The next event, skipping (and keeping) comments; None once the stream has ended."""
        fields: dict[str, str] = {}
        data: list[str] = []
        # One deadline for the whole event: keep-alive comments must not extend the wait.
        deadline = asyncio.get_running_loop().time() + within
        while True:
            line = await self.line(max(0.0, deadline - asyncio.get_running_loop().time()))
            if line is None:
                return None
            if line == "":
                if "retry" in fields:
                    self.retry = int(fields.pop("retry"))
                if data:  # as browsers do: a block without data dispatches no event
                    raw = "\n".join(data)
                    return SseEvent(fields.get("event"), fields.get("id"), json.loads(raw))
                fields.clear()
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value

    async def expect(self, event: str, within: float = STEP_TIMEOUT) -> SseEvent:
        got = await self.next(within)
        assert got is not None, f"the stream ended while waiting for {event!r}"
        assert got.event == event, got
        assert got.id, f"event {got.event!r} has no id"
        return got

    async def comment(self, within: float = STEP_TIMEOUT) -> str:
        """The next line, which must be a comment (a keep-alive)."""
        line = await self.line(within)
        assert line is not None and line.startswith(":"), line
        return line[1:].strip()

    async def silent_for(self, seconds: float) -> None:
        """No event arrives for this long (comments may)."""
        try:
            got = await self.next(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected no event, got {got}")

    async def ends(self, within: float = STEP_TIMEOUT) -> None:
        """The stream closes without another event."""
        got = await self.next(within)
        assert got is None, f"expected the stream to end, got {got}"


@contextlib.asynccontextmanager
async def sse(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str] | None = None,
    last_event_id: str | None = None,
) -> AsyncIterator[SseReader]:
    """Open an SSE stream, check it is one, and close it on the way out."""
    headers = dict(headers or {})
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with asyncio.timeout(STEP_TIMEOUT):
        opened = client.stream("GET", url, headers=headers)
        response = await opened.__aenter__()
    try:
        assert response.status_code == 200, (response.status_code, await response.aread())
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        try:
            yield reader
        finally:
            await reader.close()
    finally:
        await opened.__aexit__(None, None, None)


class Tokens:
    """Authorization headers for each role, and raw JWTs for the tests that forge them."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._authenticator = Authenticator(secret)

    @property
    def admin(self) -> Headers:
        return self._bearer(self._authenticator.token(Role.ADMIN, "root"))

    def customer(self, sub: str | int = "c1") -> Headers:
        return self._bearer(self._authenticator.token(Role.CUSTOMER, str(sub)))

    def store(self, store_id: int, sub: str = "tablet") -> Headers:
        return self._bearer(self._authenticator.token(Role.STORE, sub, store_id))

    def forged(self, claims: dict[str, Any], key: str | None = None, algorithm: str = "HS256") -> Headers:
        token = jwt.encode(claims, key if key is not None else self.secret, algorithm=algorithm)
        return self._bearer(token)

    @staticmethod
    def _bearer(token: str) -> Headers:
        return {"Authorization": f"Bearer {token}"}


class Api:
    """The calls many tests make, named for what they do; each returns the raw response."""

    def __init__(self, client: httpx.AsyncClient, tokens: Tokens) -> None:
        self.client, self.tokens = client, tokens

    async def join_v2(self, store_id: int, customer: str | int, party_size: Any = 2) -> httpx.Response:
        return await self.client.post(
            f"/v2/stores/{store_id}/waitings",
            json={"partySize": party_size},
            headers=self.tokens.customer(customer),
        )

    async def join_app_v2(
        self, store_id: int, name: str = "김민수", phone: str = "010-1234-5678", party_size: int = 2
    ) -> httpx.Response:
        return await self.client.post(
            f"/v2/app/stores/{store_id}/waitings",
            json={"name": name, "phoneNumber": phone, "partySize": party_size},
            headers=self.tokens.store(store_id),
        )

    async def join_v3(self, store_id: int, customer: str | int, party_size: Any = 2) -> httpx.Response:
        return await self.client.post(
            f"/v3/stores/{store_id}/waitings",
            json={"partySize": party_size},
            headers=self.tokens.customer(customer),
        )

    async def join_app_v3(
        self, store_id: int, name: str = "김민수", phone: str = "010-1234-5678", party_size: int = 2
    ) -> httpx.Response:
        return await self.client.post(
            f"/v3/app/stores/{store_id}/waitings",
            json={"name": name, "phoneNumber": phone, "partySize": party_size},
            headers=self.tokens.store(store_id),
        )

    async def act(self, store_id: int, waiting_id: int, action: str) -> httpx.Response:
        """call / seat / no-show / cancel, as the store's staff."""
        return await self.client.post(
            f"/stores/{store_id}/waitings/{waiting_id}/{action}", headers=self.tokens.store(store_id)
        )

    async def outcome(self, trace_id: str, headers: Headers, within: float = 20.0) -> dict[str, Any]:
        """Poll a V3 request until it is decided (bounded)."""
        async with asyncio.timeout(within):
            while True:
                response = await self.client.get(f"/v3/waiting-requests/{trace_id}", headers=headers)
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                if body["status"] != "QUEUED":
                    return body
                await asyncio.sleep(0.02)


WAITING_FIELDS = {
    "id",
    "storeId",
    "businessDate",
    "number",
    "channel",
    "status",
    "partySize",
    "rank",
    "estimatedWaitMinutes",
    "createdAt",
    "calledAt",
    "seatedAt",
    "cancelledAt",
    "noShowAt",
    "userId",
    "name",
    "phoneNumber",
    "statusToken",
}


def assert_waiting(view: dict[str, Any], *, ranked: bool = True, **expected: Any) -> dict[str, Any]:
    """A Waiting in the contract's shape (camelCase, ISO-8601 times with offset), plus expected values.

    `ranked`: a WAITING entry carries its rank (store-stream events do not compute one).
    """
    assert {"id", "storeId", "businessDate", "number", "channel", "status", "partySize", "createdAt"} <= set(
        view
    )
    assert set(view) <= WAITING_FIELDS, set(view) - WAITING_FIELDS
    for key in ("createdAt", "calledAt", "seatedAt", "cancelledAt", "noShowAt"):
        if key in view:
            assert datetime.fromisoformat(view[key]).utcoffset() is not None, view[key]
    date.fromisoformat(view["businessDate"])
    if view["status"] != "WAITING":
        assert "rank" not in view and "estimatedWaitMinutes" not in view, view
    elif ranked:
        assert "rank" in view and "estimatedWaitMinutes" in view, view
    for key, value in expected.items():
        assert view[key] == value, (key, view)
    return view


def midday_zone() -> str:
    """A time zone where it is about noon now: the burst cannot straddle the store's midnight,
    when numbering starts again at 1. (Etc/GMT-N is UTC+N.)"""
    offset = 12 - datetime.now(UTC).hour
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
