"""`waitline serve | token | migrate`: run the service, print a token, bring the schema up to date."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace

from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from adapters.lock.redis import RedisLock
from adapters.persistence import schema
from application.access import Role
from entrypoints.container import Container, engine_for
from entrypoints.settings import Settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        for problem in error.errors():
            where = "".join(f"WAITLINE_{part}: ".upper() for part in problem["loc"][:1])
            print(f"waitline: bad configuration: {where}{problem['msg']}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic names its implementation on every connection; the revisions it runs are enough.
    logging.getLogger("alembic.runtime.migration").addFilter(lambda record: "Running" in record.msg)
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

    # Checked before uvicorn starts, so that a database that cannot work is one clear line.
    if problem := _database_problem(settings, migrate=settings.embedded_database) or _redis_problem(settings):
        print(f"waitline: {problem}", file=sys.stderr)
        return 1
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
    if problem := _database_problem(settings, migrate=True):
        print(f"waitline: {problem}", file=sys.stderr)
        return 1
    print(f"schema up to date ({schema.head()}) at {_shown(settings.sqlalchemy_url())}")
    return 0


def _database_problem(settings: Settings, *, migrate: bool) -> str | None:
    """Bring the schema up to date (or check it); what went wrong, in one line, or None."""

    async def run() -> None:
        limits = settings.database_limits()
        if migrate:  # building an index on a long table may take longer than any request should
            limits = replace(limits, statement_timeout=None)
        engine = engine_for(settings, limits)
        try:
            await (schema.upgrade(engine) if migrate else schema.check(engine))
        finally:
            await engine.dispose()

    where = _shown(settings.sqlalchemy_url())
    try:
        asyncio.run(run())
    except schema.SchemaNotCurrent as error:
        return f"{error} ({where})"
    except (OSError, SQLAlchemyError) as error:
        return f"cannot use the database at {where}: {_reason(error)}"
    return None


def _redis_problem(settings: Settings) -> str | None:
    if not settings.redis_url:
        return None

    async def ping(url: str) -> None:
        lock = RedisLock.from_url(url)
        try:
            async with asyncio.timeout(settings.db_connect_timeout):
                await lock.ping()
        finally:
            await lock.close()

    try:
        asyncio.run(ping(settings.redis_url))
    except (OSError, RedisError) as error:
        return f"cannot use Redis at {_shown(settings.redis_url)}: {_reason(error)}"
    return None


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _reason(error: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's wrapping and links."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig.__cause__ or error.orig
    return (str(error) or type(error).__name__).splitlines()[0]
