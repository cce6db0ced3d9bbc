"""Reading a JSON body strictly, with errors that name the field."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException

from domain.errors import ValidationError

T = TypeVar("T")

_MISSING = re.compile(r"missing required field `(?P<path>[^`]*)`")
_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


async def read_json(request: Request[Any, Any, Any], schema: type[T]) -> T:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(status_code=415, detail="send the body as application/json")
    body = await request.body()
    try:
        return msgspec.json.decode(body, type=schema, strict=True)
    except msgspec.ValidationError as error:
        message = str(error)
        match = _PATH.search(message) or _MISSING.search(message)
        field = match.group("path") if match else ""
        raise ValidationError.of(field or "body", _PATH.sub("", message)) from error
    except msgspec.DecodeError as error:
        raise ValidationError.of("body", f"not valid JSON: {error}") from error
