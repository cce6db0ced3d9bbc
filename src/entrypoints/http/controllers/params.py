"""Path and header parameters shared by the controllers."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

MAX_ID = 2**63 - 1

StoreId = Annotated[int, Parameter(ge=1, le=MAX_ID, description="A store's id.")]
WaitingId = Annotated[int, Parameter(ge=1, le=MAX_ID, description="A waiting's id.")]
TraceId = Annotated[str, Parameter(max_length=64, description="The traceId a V3 registration answered.")]
StatusToken = Annotated[str, Parameter(max_length=128, description="A guest's status token.")]
LastEventId = Annotated[
    str | None,
    Parameter(header="Last-Event-ID", required=False, max_length=64, description="Resume after this event."),
]
