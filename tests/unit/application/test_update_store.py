"""Changing a store's settings: only what is named, a new webhook's secret once, addresses checked."""

from __future__ import annotations

from datetime import time

import pytest

from application.stores import StoreChanges, UpdateStore, WebhookPolicy, public_host
from domain.errors import ValidationError
from unit.helpers import ADMIN, Service


def update(service: Service, *, insecure: bool = False) -> UpdateStore:
    return UpdateStore(service.uow_factory, service.clock, service.announcer, WebhookPolicy(insecure))


async def test_only_the_named_settings_change() -> None:
    service = Service()
    store = await service.add_store(max_queue_size=20)

    view = await update(service)(
        ADMIN, store.id, StoreChanges(notify_at_rank=None, day_starts_at=time(4, 30))
    )

    stored = service.db.stores[store.id]
    assert (stored.notify_at_rank, stored.day_starts_at, stored.max_queue_size) == (None, time(4, 30), 20)
    assert (view["notifyAtRank"], view["dayStartsAt"], view["maxQueueSize"]) == (None, "04:30", 20)


async def test_a_cleared_setting_that_cannot_be_empty_goes_back_to_its_default() -> None:
    service = Service()
    store = await service.add_store(max_party_size=4)
    await update(service)(ADMIN, store.id, StoreChanges(max_postpones=5, day_starts_at=time(6)))

    await update(service)(
        ADMIN, store.id, StoreChanges(max_party_size=None, max_postpones=None, day_starts_at=None)
    )

    stored = service.db.stores[store.id]
    assert (stored.max_party_size, stored.max_postpones, stored.day_starts_at) == (10, 1, time(0))


async def test_a_bad_value_changes_nothing() -> None:
    service = Service()
    store = await service.add_store()

    with pytest.raises(ValidationError):
        await update(service)(ADMIN, store.id, StoreChanges(notify_at_rank=3, max_postpones=99))

    assert service.db.stores[store.id].max_postpones == 1


async def test_the_webhook_secret_is_made_for_a_new_url_and_dropped_with_it() -> None:
    service = Service()
    store = await service.add_store()
    change = update(service)

    first = await change(ADMIN, store.id, StoreChanges(webhook_url="https://hooks.example.com/a"))
    same = await change(ADMIN, store.id, StoreChanges(webhook_url="https://hooks.example.com/a"))
    kept = service.db.stores[store.id].webhook_secret
    cleared = await change(ADMIN, store.id, StoreChanges(webhook_url=None))

    assert first["webhookSecret"] == kept and kept is not None and len(kept) >= 40
    assert "webhookSecret" not in same
    assert "webhookSecret" not in cleared and service.db.stores[store.id].webhook_secret is None


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("hooks.example.com", True),
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("localhost", False),
        ("api.localhost", False),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("::1", False),
        ("fd00::1", False),
        ("printer.local", False),
        ("intranet", False),
        ("db.internal", False),
    ],
)
def test_public_hosts(host: str, public: bool) -> None:
    assert public_host(host) is public


def test_insecure_webhooks_only_when_allowed() -> None:
    WebhookPolicy(allow_insecure=True).check("http://127.0.0.1:8080/hook")
    with pytest.raises(ValidationError, match="https"):
        WebhookPolicy().check("http://hooks.example.com/hook")
    with pytest.raises(ValidationError, match="public"):
        WebhookPolicy().check("https://127.0.0.1/hook")
    with pytest.raises(ValidationError, match="absolute"):
        WebhookPolicy(allow_insecure=True).check("/relative")
