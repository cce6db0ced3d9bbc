"""A client that hangs up before its body is read is no server error: 499, not 500, in the metrics."""

from __future__ import annotations

from typing import Any

from entrypoints.container import Container
from entrypoints.http.app import create_app
from harness.app import lifespan_of
from harness.httpkit import Tokens


async def test_a_client_gone_before_its_body_was_read_is_counted_499_not_500(
    container: Container, tokens: Tokens
) -> None:
    app = create_app(container)
    async with lifespan_of(app):
        sent: list[dict[str, Any]] = []
        await app(_scope(tokens.customer("gone")["Authorization"]), _hung_up, _keep(sent))
        started = next(message for message in sent if message["type"] == "http.response.start")
        assert started["status"] == 499
        metrics: list[dict[str, Any]] = []
        await app(_scope(None, "GET", "/metrics"), _hung_up, _keep(metrics))
        text = b"".join(m.get("body", b"") for m in metrics if m["type"] == "http.response.body").decode()
    assert 'route="/v2/stores/{storeId}/waitings",status="499"' in text, text
    assert 'status="500"' not in text


def _scope(authorization: str | None, method: str = "POST", path: str = "/v2/stores/1/waitings") -> Any:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"17")]
    if authorization:
        headers.append((b"authorization", authorization.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }


async def _hung_up() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def _keep(into: list[dict[str, Any]]) -> Any:
    async def send(message: dict[str, Any]) -> None:
        into.append(message)

    return send
