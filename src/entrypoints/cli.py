"""`waitline serve | consume | token | migrate | topics | dlq`: run the API or the Kafka consumer,
print a token, bring the schema up to date, create the Kafka topics, look at and replay dead letters."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from adapters.lock.redis import RedisLock
from adapters.persistence import schema
from adapters.queue.kafka import KafkaRegistrationQueue
from adapters.queue.kafka_dead_letters import dead_letters, replayable
from adapters.queue.kafka_topics import create_topics
from adapters.status.redis import RedisRequestStatuses
from application.access import Role
from application.ports import QueueUnavailable
from application.requests import RequestStatus
from entrypoints.container import Container, engine_for, kafka_config, pending_requests
from entrypoints.logs import configure_logging
from entrypoints.settings import Settings

if TYPE_CHECKING:
    import uvicorn

T = TypeVar("T")
# Built by uvicorn in each worker process, from the same environment this process checked.
APP_FACTORY = "entrypoints.http.app:create_app_from_environment"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        for problem in error.errors():
            where = "".join(f"WAITLINE_{part}: ".upper() for part in problem["loc"][:1])
            print(f"waitline: bad configuration: {where}{problem['msg']}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return int(args.run(args, settings) or 0)


def _at_least_one(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {number}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="waitline", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the HTTP API (embedded defaults need no servers)")
    serve.add_argument("--host", help="interface to listen on (default WAITLINE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default WAITLINE_PORT or 8000)")
    serve.add_argument(
        "--workers",
        type=_at_least_one,
        help="processes answering on the port (default WAITLINE_WORKERS or 1; more need "
        "WAITLINE_DATABASE_URL and WAITLINE_REDIS_URL)",
    )
    serve.set_defaults(run=_serve)

    token = commands.add_parser("token", help="print a JWT for local use")
    token.add_argument("--role", required=True, choices=[str(role) for role in Role])
    token.add_argument("--sub", required=True, help="the user id (customer) or any id")
    token.add_argument("--store-id", type=int, help="the store a store token acts for")
    token.add_argument("--ttl", type=int, default=86_400, help="seconds until it expires (default a day)")
    token.add_argument(
        "--link",
        action="store_true",
        help="print the store's tablet page with the token in its fragment (/tablet#token=...)",
    )
    token.add_argument(
        "--base-url",
        help="where the tablet reaches the service, for --link (default http://WAITLINE_HOST:WAITLINE_PORT)",
    )
    token.set_defaults(run=_token)

    migrate = commands.add_parser("migrate", help="create or update the database schema")
    migrate.set_defaults(run=_migrate)

    consume = commands.add_parser("consume", help="decide queued V3 requests from Kafka (until SIGTERM)")
    consume.set_defaults(run=_consume)

    topics = commands.add_parser("topics", help="the Kafka topics").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = topics.add_parser("create", help="create the request and dead letter topics (idempotent)")
    create.add_argument("--partitions", type=int, help="default WAITLINE_KAFKA_PARTITIONS or 12")
    create.add_argument("--replication-factor", type=int, help="default WAITLINE_KAFKA_REPLICATION or 1")
    create.set_defaults(run=_topics_create)

    dlq = commands.add_parser("dlq", help="the dead letter topic").add_subparsers(
        required=True, metavar="ACTION"
    )
    dlq.add_parser("list", help="one line per dead letter").set_defaults(run=_dlq_list)
    replay = dlq.add_parser(
        "replay", help="queue readable dead letters again (a parsing error cannot be replayed)"
    )
    replay.add_argument("--trace-id", action="append", default=[], help="only this request (repeatable)")
    replay.set_defaults(run=_dlq_replay)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    workers = args.workers or settings.workers
    if workers > 1 and not settings.shared:
        print(
            f"waitline: --workers {workers} needs WAITLINE_DATABASE_URL and WAITLINE_REDIS_URL: "
            "the embedded lock and queue live in one process, and several would break the "
            "stores' arrival order",
            file=sys.stderr,
        )
        return 2
    # Checked once, before any worker starts, so that a server that cannot work is one clear line
    # (Redis first: nothing is migrated for a start that fails), and the embedded file is
    # migrated by one process only.
    if problem := _redis_problem(settings) or _database_problem(settings, migrate=settings.embedded_database):
        print(f"waitline: {problem}", file=sys.stderr)
        return 1
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        # Then what is still open (a live stream never ends by itself) is cut, so that the
        # container's stop closes the connections and producers before the process exits.
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    return _run(config)


def _run(config: uvicorn.Config) -> int:
    """Serve until SIGTERM: one process, or a supervisor and its workers on one socket."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    if config.workers == 1:
        server = uvicorn.Server(config)
        server.run()
        return 0 if server.started else 1
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    # uvicorn.run() ends quietly when a worker cannot start; whoever runs us must see it.
    return 1 if any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes) else 0


def _consume(_: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.consumer import MetricsServer, consume

    if (
        problem := _kafka_missing(settings)
        or _database_problem(settings, migrate=False)
        or _redis_problem(settings)
    ):
        print(f"waitline: {problem}", file=sys.stderr)
        return 1
    container = _container(settings)
    try:
        metrics = MetricsServer(container.registry(), settings.host, settings.metrics_port)
    except OSError as error:
        where = f"{settings.host}:{settings.metrics_port}"
        print(f"waitline: cannot serve metrics on {where}: {_reason(error)}", file=sys.stderr)
        return 1
    try:
        asyncio.run(consume(container))
    except (KafkaError, OSError) as error:
        print(f"waitline: cannot use Kafka at {settings.kafka_bootstrap}: {_reason(error)}", file=sys.stderr)
        return 1
    finally:
        metrics.close()
    return 0


def _topics_create(args: argparse.Namespace, settings: Settings) -> int:
    if problem := _kafka_missing(settings):
        print(f"waitline: {problem}", file=sys.stderr)
        return 1
    partitions = args.partitions or settings.kafka_partitions
    replication = args.replication_factor or settings.kafka_replication
    fates = _on_kafka(settings, create_topics(kafka_config(settings), partitions, replication))
    if fates is None:
        return 1
    for name, fate in fates.items():
        print(f"{name}: {fate}")
    return 0


def _dlq_list(_: argparse.Namespace, settings: Settings) -> int:
    if problem := _kafka_missing(settings):
        print(f"waitline: {problem}", file=sys.stderr)
        return 1
    letters = _on_kafka(settings, dead_letters(kafka_config(settings)))
    if letters is None:
        return 1
    for letter in letters:
        print(
            f"{letter.partition}/{letter.offset} {letter.error_type} trace-id={letter.trace_id or '-'} "
            f"from={letter.original}: {letter.error_message}"
        )
    print(f"{len(letters)} dead letters", file=sys.stderr)
    return 0


def _dlq_replay(args: argparse.Namespace, settings: Settings) -> int:
    if problem := _kafka_missing(settings) or _redis_problem(settings):
        print(f"waitline: {problem}", file=sys.stderr)
        return 1

    async def replay() -> int:
        assert settings.redis_url  # the settings ask for it with Kafka
        config = kafka_config(settings)
        statuses = RedisRequestStatuses.from_url(settings.redis_url, prefix=settings.redis_prefix)
        queue = KafkaRegistrationQueue(config, pending_requests(settings))
        try:
            requests = replayable(await dead_letters(config), set(args.trace_id))
            for request in requests:
                await statuses.put(RequestStatus.queued(request))
                try:
                    await queue.publish(request)
                except BaseException:
                    await statuses.forget(request.trace_id)
                    raise
                print(f"queued again: {request.trace_id} (store {request.store_id})")
        finally:
            await queue.close()
            await statuses.close()
        return len(requests)

    replayed = _on_kafka(settings, replay())
    if replayed is None:
        return 1
    print(f"{replayed} requests queued again", file=sys.stderr)
    return 0


def _kafka_missing(settings: Settings) -> str | None:
    return None if settings.kafka_bootstrap else "WAITLINE_KAFKA_BOOTSTRAP is not set"


def _on_kafka(settings: Settings, work: Coroutine[Any, Any, T]) -> T | None:
    """The work's result, or None once its failure is told in one line."""
    try:
        return asyncio.run(work)
    except (KafkaError, OSError, QueueUnavailable) as error:
        print(f"waitline: cannot use Kafka at {settings.kafka_bootstrap}: {_reason(error)}", file=sys.stderr)
        return None
    except RedisError as error:
        print(
            f"waitline: cannot use Redis at {_shown(settings.redis_url or '')}: {_reason(error)}",
            file=sys.stderr,
        )
        return None


def _container(settings: Settings) -> Container:
    container = Container()
    container.settings.override(settings)
    return container


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.http.auth import Authenticator

    role = Role(args.role)
    if role is Role.STORE and args.store_id is None:
        print("a store token needs --store-id", file=sys.stderr)
        return 2
    if args.link and role is not Role.STORE:
        print("--link is the store's tablet page: it needs --role store", file=sys.stderr)
        return 2
    token = Authenticator(settings.secret()).token(role, args.sub, args.store_id, args.ttl)
    # In the fragment, the token never reaches a server, a proxy's log or a Referer header.
    print(f"{_base_url(args.base_url, settings)}/tablet#token={token}" if args.link else token)
    return 0


def _base_url(given: str | None, settings: Settings) -> str:
    if given:
        return given.rstrip("/")
    # Listening on every interface: this machine's own address is the one that surely answers.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


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
