"""Stores: creating them, their settings, and opening, closing or pausing their lists."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import time
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from application.access import Actor, Role
from application.announcements import Announcer
from application.ports import Clock, UnitOfWork, UnitOfWorkFactory
from application.views import View, store_view
from domain.errors import StoreNotFound, ValidationError
from domain.store import (
    DEFAULT_MAX_PARTY_SIZE,
    DEFAULT_MAX_POSTPONES,
    DEFAULT_TIME_ZONE,
    MIDNIGHT,
    Store,
)


@dataclass(frozen=True)
class NewStore:
    name: str
    time_zone: str = DEFAULT_TIME_ZONE
    max_party_size: int = DEFAULT_MAX_PARTY_SIZE
    max_queue_size: int | None = None
    avg_service_minutes: int | None = None
    waiting_open: bool = False


class _Unchanged(Enum):
    UNCHANGED = "unchanged"


UNCHANGED = _Unchanged.UNCHANGED
# What a null clears a setting that cannot be empty back to.
DEFAULTS: dict[str, Any] = {
    "max_party_size": DEFAULT_MAX_PARTY_SIZE,
    "max_postpones": DEFAULT_MAX_POSTPONES,
    "day_starts_at": MIDNIGHT,
}


@dataclass(frozen=True)
class StoreChanges:
    """The settings a PATCH names; `UNCHANGED` for the others, None to clear one."""

    name: str | _Unchanged = UNCHANGED
    max_party_size: int | _Unchanged | None = UNCHANGED
    max_queue_size: int | _Unchanged | None = UNCHANGED
    avg_service_minutes: int | _Unchanged | None = UNCHANGED
    notify_at_rank: int | _Unchanged | None = UNCHANGED
    max_postpones: int | _Unchanged | None = UNCHANGED
    day_starts_at: time | _Unchanged | None = UNCHANGED
    webhook_url: str | _Unchanged | None = UNCHANGED

    def given(self) -> dict[str, Any]:
        """The named settings as the store's fields, a cleared one at its default."""
        named = {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not UNCHANGED
        }
        return {
            name: DEFAULTS[name] if value is None and name in DEFAULTS else value
            for name, value in named.items()
        }


@dataclass(frozen=True)
class WebhookPolicy:
    """Where a store may send webhooks: `https` to a public address, so that a store cannot point
    the service at hosts inside its network; anything local when `allow_insecure` (development).
    A name is checked again when it is resolved for a delivery."""

    allow_insecure: bool = False

    def check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValidationError.of("webhookUrl", "must be an absolute http(s) URL")
        if len(url) > 2000:
            raise ValidationError.of("webhookUrl", "must be at most 2000 characters")
        if self.allow_insecure:
            return
        if parts.scheme != "https":
            raise ValidationError.of("webhookUrl", "must use https")
        if not public_host(parts.hostname):
            raise ValidationError.of("webhookUrl", "must point to a public address")


# Names that only mean something inside a network.
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def public_host(host: str) -> bool:
    """False for loopback, private, link-local and other non-global addresses, and local names."""
    host = host.rstrip(".").lower()
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    return "." in host and host != "localhost" and not host.endswith(LOCAL_SUFFIXES)


class CreateStore:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def __call__(self, actor: Actor, new: NewStore) -> View:
        actor.require_role(Role.ADMIN)
        store = Store(
            id=0,
            name=new.name,
            time_zone=new.time_zone,
            waiting_open=new.waiting_open,
            max_party_size=new.max_party_size,
            max_queue_size=new.max_queue_size,
            avg_service_minutes=new.avg_service_minutes,
        )
        async with self._uow() as uow:
            await uow.stores.add(store)
            await uow.commit()
        return store_view(store, self._clock.now())


class UpdateStore:
    """Change a store's settings; a new webhook URL gets a new signing secret, answered once."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, announcer: Announcer, webhooks: WebhookPolicy
    ) -> None:
        self._uow, self._clock, self._announcer, self._webhooks = uow, clock, announcer, webhooks

    async def __call__(self, actor: Actor, store_id: int, changes: StoreChanges) -> View:
        actor.require_staff(store_id)
        given = changes.given()
        if given.get("webhook_url") is not None:
            self._webhooks.check(given["webhook_url"])
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            new_webhook = "webhook_url" in given and given["webhook_url"] != store.webhook_url
            if new_webhook:
                given["webhook_secret"] = secrets.token_urlsafe(32) if given["webhook_url"] else None
            store = replace(store, **given)  # checked again as a whole: a bad value is a 400
            await uow.stores.save(store)
            await uow.commit()
        now = self._clock.now()
        await self._announcer.store_changed(store, "updated", now)
        view = store_view(store, now)
        if new_webhook and store.webhook_secret:
            view["webhookSecret"] = store.webhook_secret
        return view


class SwitchWaiting:
    """Open, close or pause a store's list; registrations already decided are not touched."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, announcer: Announcer) -> None:
        self._uow, self._clock, self._announcer = uow, clock, announcer

    async def __call__(self, actor: Actor, store_id: int, *, open_: bool) -> View:
        change = Store.open_waiting if open_ else Store.close_waiting
        return await self._switch(actor, store_id, "opened" if open_ else "closed", change)

    async def pause(self, actor: Actor, store_id: int, minutes: int) -> View:
        now = self._clock.now()
        return await self._switch(actor, store_id, "paused", lambda store: store.pause(minutes, now))

    async def _switch(self, actor: Actor, store_id: int, event: str, change: Callable[[Store], None]) -> View:
        actor.require_staff(store_id)
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            change(store)
            await uow.stores.save(store)
            await uow.commit()
        now = self._clock.now()
        await self._announcer.store_changed(store, event, now)
        return store_view(store, now)


async def existing_store(uow: UnitOfWork, store_id: int) -> Store:
    store = await uow.stores.get(store_id)
    if store is None:
        raise StoreNotFound(f"store {store_id} not found")
    return store
