"""Changing a store's settings and its webhook URL: who may, what is heard, what a refusal says.
Edges the mutation run (scripts/mutation) found untested beside test_update_store.py."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from application.access import Forbidden
from application.stores import StoreChanges, UpdateStore, WebhookPolicy, public_host
from domain.errors import FieldError, ValidationError
from unit.helpers import NOON_IN_SEOUL, Service, published, staff


def update(service: Service) -> UpdateStore:
    return UpdateStore(service.uow_factory, service.clock, service.announcer, WebhookPolicy())


def refusal(url: str, policy: WebhookPolicy | None = None) -> FieldError:
    with pytest.raises(ValidationError) as refused:
        (policy or WebhookPolicy()).check(url)
    [error] = refused.value.errors
    return error


async def test_a_stores_own_staff_change_its_settings_and_no_other_stores_staff_do() -> None:
    service = Service()
    store = await service.add_store()

    view = await update(service)(staff(store.id), store.id, StoreChanges(name="Onion Bakery Anguk"))

    assert view["name"] == service.db.stores[store.id].name == "Onion Bakery Anguk"
    with pytest.raises(Forbidden):
        await update(service)(staff(store.id + 1), store.id, StoreChanges(name="Mine"))


async def test_the_store_stream_hears_the_change_with_the_store_as_its_staff_see_it() -> None:
    service = Service()
    store = await service.add_store()
    await service.switch.pause(staff(store.id), store.id, 30)

    view = await update(service)(staff(store.id), store.id, StoreChanges(max_party_size=4))

    heard = (await published(service.notifier, f"store:{store.id}"))[-1]
    assert (heard.type, dict(heard.data)) == ("updated", view)
    assert (view["maxPartySize"], view["pausedUntil"]) == (
        4,
        (NOON_IN_SEOUL + timedelta(minutes=30)).isoformat(),
    )


async def test_a_webhook_url_to_a_private_address_is_refused_and_nothing_changes() -> None:
    service = Service()
    store = await service.add_store()

    with pytest.raises(ValidationError):
        await update(service)(staff(store.id), store.id, StoreChanges(webhook_url="https://10.0.0.1/hook"))

    assert service.db.stores[store.id].webhook_url is None


@pytest.mark.parametrize(
    ("url", "policy", "message"),
    [
        ("/relative", WebhookPolicy(allow_insecure=True), "must be an absolute http(s) URL"),
        ("ftp://hooks.example.com/hook", WebhookPolicy(), "must be an absolute http(s) URL"),
        ("https://", WebhookPolicy(), "must be an absolute http(s) URL"),
        ("http://hooks.example.com/hook", WebhookPolicy(), "must use https"),
        ("https://192.168.1.1/hook", WebhookPolicy(), "must point to a public address"),
        ("https://hooks.example.com/" + "x" * 1975, WebhookPolicy(), "must be at most 2000 characters"),
    ],
)
def test_a_refused_webhook_url_is_told_what_is_wrong(url: str, policy: WebhookPolicy, message: str) -> None:
    assert refusal(url, policy) == FieldError("webhookUrl", message)


def test_a_webhook_url_of_2000_characters_is_accepted() -> None:
    url = "https://hooks.example.com/" + "x" * 1974

    WebhookPolicy().check(url)

    assert len(url) == 2000


@pytest.mark.parametrize("host", ["localhost.", "printer.local.", "Printer.LOCAL"])
def test_a_local_name_is_local_however_it_is_written(host: str) -> None:
    assert public_host(host) is False


def test_a_public_name_written_with_its_root_dot_is_public() -> None:
    assert public_host("hooks.example.com.") is True


async def test_a_new_webhook_gets_a_signing_secret_of_32_random_bytes() -> None:
    service = Service()
    store = await service.add_store()

    view = await update(service)(
        staff(store.id), store.id, StoreChanges(webhook_url="https://hooks.example.com/a")
    )

    assert len(base64.urlsafe_b64decode(view["webhookSecret"] + "=")) == 32
