"""Path and header parameters shared by the controllers.

Ids arrive as text and are read strictly (ASCII digits, no sign, no leading zero, at most
2**63 - 1): Python's int() would also take "１", "0_1" or " 1" for store 1.
"""

from __future__ import annotations

import re
from typing import Annotated

from litestar.openapi.spec import OpenAPIType
from litestar.params import HeaderParameter, Parameter

from domain.errors import ValidationError
from entrypoints.http.auth import MAX_ID

_ID = re.compile(r"[1-9][0-9]{0,18}")

# Read as text, documented as what it must hold.
IdText = Annotated[
    str,
    Parameter(
        max_length=32,
        description="A positive 64-bit integer.",
        schema_extra={
            "type": OpenAPIType.INTEGER,
            "format": "int64",
            "minimum": 1,
            "maximum": MAX_ID,
            "max_length": None,
        },
    ),
]
TraceId = Annotated[str, Parameter(max_length=64, description="The traceId a V3 registration answered.")]
StatusToken = Annotated[str, Parameter(max_length=128, description="A guest's status token.")]
LastEventId = Annotated[
    str | None,
    HeaderParameter(name="Last-Event-ID", required=False, description="Resume after this event."),
]
# Checked after the caller is (application/idempotency.py, controllers/idempotent.py): read as text,
# documented as what it must hold.
IdempotencyKeyText = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description=(
            "Retry safely: the same caller sending the same key within 24 hours gets the first answer"
            " again (status and body), and nothing new is done."
        ),
        schema_extra={
            "one_of": None,
            "type": OpenAPIType.STRING,
            "min_length": 1,
            "max_length": 255,
            "pattern": "^[!-~]+$",
        },
    ),
]


def _id(text: str, field: str) -> int:
    if not _ID.fullmatch(text) or int(text) > MAX_ID:
        raise ValidationError.of(field, "must be a positive 64-bit integer")
    return int(text)


# Named as in API.md's paths, so the OpenAPI document says /stores/{storeId}.
async def provide_store_id(storeId: IdText) -> int:
    return _id(storeId, "storeId")


async def provide_waiting_id(waitingId: IdText) -> int:
    return _id(waitingId, "waitingId")
