"""Two ceilings for bench/hot.py, served the way `waitline serve` serves the service (one uvicorn
process, its default loop and HTTP implementations, log level warning):

  POST /trivial                  202 `{}`: what the stack costs with no work at all
  POST /accept/{store_id:int}    an authenticated accept with no I/O: the service's bearer check
                                 (`Authenticator`, as its `actor` dependency does it), the body
                                 decoded strictly with msgspec, a traceId made, a typed 202 answer

The JWT secret comes from WAITLINE_JWT_SECRET, as the service's does.

    WAITLINE_JWT_SECRET=... .venv/bin/python bench/ceiling_app.py --port 8001
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar, MediaType, Request, Response, post
from litestar.datastructures import State
from litestar.di import Provide

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from application.access import Actor, Role
from entrypoints.http.auth import Authenticator, provide_actor
from entrypoints.settings import Settings

APP_FACTORY = "ceiling_app:create_app"


class Join(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    party_size: int


class Accepted(msgspec.Struct, rename="camel"):
    trace_id: str
    status: str
    store_id: int


@post("/trivial", status_code=202)
async def trivial() -> dict[str, Any]:
    return {}


@post("/accept/{store_id:int}", status_code=202)
async def accept(request: Request[Any, Any, Any], store_id: int, actor: Actor) -> Accepted:
    actor.require_role(Role.CUSTOMER)
    msgspec.json.decode(await request.body(), type=Join, strict=True)
    return Accepted(trace_id=str(uuid.uuid4()), status="QUEUED", store_id=store_id)


def _bad_body(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    return Response({"detail": str(error)}, status_code=400, media_type=MediaType.JSON)


def create_app() -> Litestar:
    return Litestar(
        route_handlers=[trivial, accept],
        dependencies={"actor": Provide(provide_actor)},
        exception_handlers={msgspec.ValidationError: _bad_body, msgspec.DecodeError: _bad_body},
        state=State({"authenticator": Authenticator(os.environ["WAITLINE_JWT_SECRET"])}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=Settings().shutdown_grace_seconds,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
