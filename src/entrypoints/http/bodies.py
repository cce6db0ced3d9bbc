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
