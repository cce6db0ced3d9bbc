"""`waitline serve | token | migrate`: run the service, print a token, bring the schema up to date."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from application.access import Role
from entrypoints.container import Container, start, stop
from entrypoints.settings import Settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"waitline: bad configuration:\n{error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.run(args, settings) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="waitline", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the HTTP API (embedded defaults need no servers)")
    serve.add_argument("--host", help="interface to listen on (default WAITLINE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default WAITLINE_PORT or 8000)")
    serve.set_defaults(run=_serve)

    token = commands.add_parser("token", help="print a JWT for local use")
    token.add_argument("--role", required=True, choices=[str(role) for role in Role])
    token.add_argument("--sub", required=True, help="the user id (customer) or any id")
    token.add_argument("--store-id", type=int, help="the store a store token acts for")
    token.add_argument("--ttl", type=int, default=86_400, help="seconds until it expires (default a day)")
    token.set_defaults(run=_token)

    migrate = commands.add_parser("migrate", help="create or update the database schema")
    migrate.set_defaults(run=_migrate)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from entrypoints.http.app import create_app

    container = Container()
    container.settings.override(settings)
    host, port = args.host or settings.host, args.port or settings.port
    uvicorn.run(create_app(container), host=host, port=port, log_level=settings.log_level.lower())
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.http.auth import Authenticator

    role = Role(args.role)
    if role is Role.STORE and args.store_id is None:
        print("a store token needs --store-id", file=sys.stderr)
        return 2
    print(Authenticator(settings.secret()).token(role, args.sub, args.store_id, args.ttl))
    return 0


def _migrate(_: argparse.Namespace, settings: Settings) -> int:
    async def run() -> None:
        container = Container()
        container.settings.override(settings)
        await start(container)
        await stop(container)

    asyncio.run(run())
    print(f"schema up to date at {settings.sqlalchemy_url()}")
    return 0
