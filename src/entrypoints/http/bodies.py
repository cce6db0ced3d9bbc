"""Request bodies, decoded strictly: a boolean, a float or a string is not an integer."""

from __future__ import annotations

from typing import Annotated

import msgspec

PartySize = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class CustomerJoin(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    party_size: PartySize


class GuestJoin(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=200)]
    phone_number: Annotated[str, msgspec.Meta(max_length=40)]
    party_size: PartySize


class NewStoreBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    time_zone: Annotated[str, msgspec.Meta(max_length=64)] = "Asia/Seoul"
    max_party_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    max_queue_size: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    avg_service_minutes: Annotated[int, msgspec.Meta(ge=0, le=1440)] | None = None
    waiting_open: bool = False


# Local time of day, 00:00..23:59.
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["04:30"])]


class StoreSettingsBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Only the settings named change; null clears one (a setting that cannot be empty goes back
    to its default: maxPartySize 10, maxPostpones 1, dayStartsAt 00:00)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | msgspec.UnsetType = msgspec.UNSET
    max_party_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] | msgspec.UnsetType | None = msgspec.UNSET
    max_queue_size: Annotated[int, msgspec.Meta(ge=1, le=1000000)] | msgspec.UnsetType | None = msgspec.UNSET
    avg_service_minutes: Annotated[int, msgspec.Meta(ge=0, le=1440)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    notify_at_rank: Annotated[int, msgspec.Meta(ge=1, le=100)] | msgspec.UnsetType | None = msgspec.UNSET
    max_postpones: Annotated[int, msgspec.Meta(ge=0, le=10)] | msgspec.UnsetType | None = msgspec.UNSET
    day_starts_at: ClockTime | msgspec.UnsetType | None = msgspec.UNSET
    webhook_url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )


class PostponeBody(msgspec.Struct, forbid_unknown_fields=True):
    places: Annotated[int, msgspec.Meta(ge=1, le=5)]


class PauseBody(msgspec.Struct, forbid_unknown_fields=True):
    minutes: Annotated[int, msgspec.Meta(ge=1, le=240)]
