"""The `WebhookSender` port's contract, on every implementation (httpx's), against a real local
HTTP server: what counts as delivered, what is worth another try, and where it never connects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from adapters.webhooks.http import HttpWebhookSender
from application.ports import WebhookNotDelivered, WebhookSender
from harness.webhooks import WebhookReceiver, unused_port, webhook_receiver

BODY = b'{"type":"getting_close","storeId":1,"waitingId":2,"number":2,"rank":3}'
HEADERS = {"Content-Type": "application/json", "Waitline-Signature": "t=1,v1=ab"}
TIMEOUT = 0.5

Make = Callable[..., WebhookSender]


@pytest.fixture(params=["httpx"])
async def make_sender(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    made: list[HttpWebhookSender] = []

    def make(**options: object) -> WebhookSender:
        sender = HttpWebhookSender(TIMEOUT, **options)  # type: ignore[arg-type]
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.close()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with webhook_receiver() as receiver:
        yield receiver


async def test_a_2xx_answer_delivers_the_body_and_headers_as_given(make_sender: Make, receiver) -> None:
    receiver.answers = [204]

    await make_sender(allow_insecure=True).send(receiver.url, BODY, HEADERS)

    [got] = receiver.received
    assert (got.method, got.path, got.body) == ("POST", "/hooks/waitline", BODY)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["waitline-signature"] == "t=1,v1=ab"


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
async def test_a_failing_or_busy_endpoint_is_worth_another_try(make_sender: Make, receiver, status) -> None:
    receiver.answers = [status]

    with pytest.raises(WebhookNotDelivered, match=str(status)) as refused:
        await make_sender(allow_insecure=True).send(receiver.url, BODY, HEADERS)

    assert refused.value.retry


@pytest.mark.parametrize("status", [400, 401, 404, 410, 301, 302])
async def test_any_other_answer_is_final_and_redirects_are_not_followed(
    make_sender: Make, receiver, status
) -> None:
    receiver.answers = [status]

    with pytest.raises(WebhookNotDelivered, match=str(status)) as refused:
        await make_sender(allow_insecure=True).send(receiver.url, BODY, HEADERS)

    assert not refused.value.retry
    assert len(receiver.received) == 1


async def test_an_endpoint_that_does_not_answer_in_time_is_worth_another_try(
    make_sender: Make, receiver
) -> None:
    receiver.delay = TIMEOUT * 4

    with pytest.raises(WebhookNotDelivered, match="no answer") as refused:
        await make_sender(allow_insecure=True).send(receiver.url, BODY, HEADERS)

    assert refused.value.retry


async def test_an_endpoint_that_is_not_there_is_worth_another_try(make_sender: Make) -> None:
    with pytest.raises(WebhookNotDelivered, match="no connection") as refused:
        await make_sender(allow_insecure=True).send(f"http://127.0.0.1:{unused_port()}/hook", BODY, HEADERS)

    assert refused.value.retry


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://printer.local/hook",
        "http://hooks.example.com/hook",  # public, but not https
    ],
)
async def test_never_to_an_address_that_is_not_public_unless_allowed(make_sender: Make, url: str) -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]  # what a name would resolve to, were it looked up

    with pytest.raises(WebhookNotDelivered) as refused:
        await make_sender(resolver=public).send(url, BODY, HEADERS)

    assert not refused.value.retry


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["93.184.215.14", "10.0.0.7"], ["::ffff:192.168.1.1"]])
async def test_a_public_name_that_resolves_inside_the_network_is_refused_at_delivery(
    make_sender: Make, addresses: list[str]
) -> None:
    async def rebound(host: str, port: int) -> list[str]:
        return addresses  # the name was public when the store set it; now it points inside

    with pytest.raises(WebhookNotDelivered, match="not public") as refused:
        await make_sender(resolver=rebound).send("https://hooks.example.com/hook", BODY, HEADERS)

    assert not refused.value.retry


async def test_the_address_checked_is_the_one_connected_to(make_sender: Make) -> None:
    """The name is resolved once, by the check; the connection goes to the address checked, with
    the name in the Host header and as the TLS server name (so the certificate is still checked
    against the name). Seen at the transport, where the connection would be made."""
    looked_up: list[tuple[str, int]] = []
    connected: list[httpx.Request] = []

    async def checked(host: str, port: int) -> list[str]:
        looked_up.append((host, port))
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    def transport(request: httpx.Request) -> httpx.Response:
        connected.append(request)
        return httpx.Response(200)

    sender = make_sender(resolver=checked, transport=httpx.MockTransport(transport))
    await sender.send("https://hooks.example.com:8443/hook?store=1", BODY, HEADERS)

    assert looked_up == [("hooks.example.com", 8443)]
    [request] = connected
    assert str(request.url) == "https://93.184.215.14:8443/hook?store=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.content == BODY
