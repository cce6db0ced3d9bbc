"""The registration request on the wire: the JSON value of API.md's topic, schemaVersion 1."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from application.requests import RegistrationRequest
from domain.customer import Channel

SCHEMA_VERSION = 1
# msgspec rather than json: compact UTF-8 the same, several times faster both ways (a worker
# decodes every queued request, an accept encodes one).
_JSON, _JSON_IN = msgspec.json.Encoder(), msgspec.json.Decoder()
# Some producers start UTF-8 with a byte order mark; json.loads took it, so msgspec is spared it.
UTF8_BOM = b"\xef\xbb\xbf"


class UnreadableMessage(Exception):
    """The bytes are not a registration request this service understands (a parsing error)."""


def encode(request: RegistrationRequest) -> bytes:
    value: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "traceId": request.trace_id,
        "storeId": request.store_id,
        "channel": str(request.channel),
        "partySize": request.party_size,
        "requestedAt": request.requested_at.isoformat(),
    }
    optional = {"userId": request.user_id, "name": request.name, "phoneNumber": request.phone_number}
    value.update({key: item for key, item in optional.items() if item is not None})
    return _JSON.encode(value)


def decode(payload: bytes) -> RegistrationRequest:
    try:
        value = _JSON_IN.decode(payload.removeprefix(UTF8_BOM))
        if value["schemaVersion"] != SCHEMA_VERSION:
            raise UnreadableMessage(f"unknown schemaVersion {value['schemaVersion']!r}")
        channel = _CHANNELS[value["channel"]]
        request = RegistrationRequest(
            trace_id=_text(value["traceId"]),
            store_id=_integer(value["storeId"]),
            channel=channel,
            party_size=_integer(value["partySize"]),
            requested_at=datetime.fromisoformat(value["requestedAt"]),
            user_id=value.get("userId"),
            name=value.get("name"),
            phone_number=value.get("phoneNumber"),
        )
    except UnreadableMessage:
        raise
    except (msgspec.DecodeError, ValueError, KeyError, TypeError) as error:
        raise UnreadableMessage(f"{type(error).__name__}: {error}") from error
    if (channel is Channel.USER and not request.user_id) or (
        channel is Channel.APP and not (request.name and request.phone_number)
    ):
        raise UnreadableMessage(f"a {channel} request without its customer")
    return request


# By value, as Channel(value) finds them, without the enum's call (a microsecond per request).
_CHANNELS = {channel.value: channel for channel in Channel}


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise TypeError(f"expected a string, got {value!r}")
    return value
