"""`waitline topics create | dlq list | dlq replay | consume` as an operator runs them, on the session's broker."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer

from adapters.queue.codec import encode
from adapters.queue.kafka import store_key
from adapters.queue.pending import RedisPendingRequests
from application.requests import RegistrationRequest
from domain.customer import Channel
from entrypoints.cli import main
from harness.postgres import run_apart


@pytest.fixture
def kafka_env(
    monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, postgres_url: str, redis_url: str, tmp_path
) -> Iterator[dict[str, str]]:
    name = uuid.uuid4().hex[:12]
    env = {
        "WAITLINE_DATA_DIR": str(tmp_path),
        "WAITLINE_DATABASE_URL": postgres_url,
        "WAITLINE_REDIS_URL": redis_url,
        "WAITLINE_REDIS_PREFIX": f"test:{name}:",
        "WAITLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "WAITLINE_KAFKA_TOPIC": f"requests-{name}",
        "WAITLINE_KAFKA_DEAD_LETTER_TOPIC": f"dlq-{name}",
        "WAITLINE_KAFKA_IDEMPOTENCE": "false",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env


def test_topics_create_is_idempotent(kafka_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    topic, dlq = kafka_env["WAITLINE_KAFKA_TOPIC"], kafka_env["WAITLINE_KAFKA_DEAD_LETTER_TOPIC"]
    assert main(["topics", "create", "--partitions", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{topic}: created", f"{dlq}: created"]
    assert main(["topics", "create"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{topic}: exists", f"{dlq}: exists"]


def test_dead_letters_are_listed_and_replayed(
    kafka_env: dict[str, str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["topics", "create", "--partitions", "2"]) == 0
    assert main(["dlq", "list"]) == 0
    assert capsys.readouterr().err.strip().endswith("0 dead letters")

    failed = _request("failed-1")
    run_apart(_bury(kafka_env, failed, b"PROCESSING_ERROR"))
    run_apart(_bury(kafka_env, None, b"PARSING_ERROR"))
    assert main(["dlq", "list"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 2 and out.err.strip().endswith("2 dead letters")
    assert any("PROCESSING_ERROR trace-id=failed-1" in line and "boom" in line for line in lines)
    assert any("PARSING_ERROR trace-id=-" in line for line in lines)

    # Only the readable one goes back; the API's pending list names it, so V2 will not overtake it.
    assert main(["dlq", "replay", "--trace-id", "failed-1"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines() == ["queued again: failed-1 (store 7)"]
    pending = run_apart(_pending(redis_url, kafka_env["WAITLINE_REDIS_PREFIX"], 7))
    assert pending == ["failed-1"]


def test_an_unreachable_broker_is_one_line(
    kafka_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("WAITLINE_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
    for command in (["topics", "create"], ["dlq", "list"], ["consume"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip() and "aiokafka" not in line]
        assert lines == [lines[0]] and f"cannot use Kafka at 127.0.0.1:{port}" in lines[0], err
        assert "Traceback" not in err


def test_a_bootstrap_that_is_not_host_port_is_one_line(
    kafka_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAITLINE_KAFKA_BOOTSTRAP", "kafka")
    assert main(["consume"]) == 2
    assert "WAITLINE_KAFKA_BOOTSTRAP: Value error, expected host:port" in capsys.readouterr().err


def _request(trace_id: str) -> RegistrationRequest:
    from datetime import UTC, datetime

    return RegistrationRequest(
        trace_id=trace_id,
        store_id=7,
        channel=Channel.USER,
        party_size=2,
        requested_at=datetime(2026, 11, 26, tzinfo=UTC),
        user_id="u-1",
    )


async def _bury(env: dict[str, str], request: RegistrationRequest | None, error_type: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=env["WAITLINE_KAFKA_BOOTSTRAP"], acks="all")
    await producer.start()
    try:
        headers = [("error-type", error_type), ("error-message", b"boom"), ("original-topic", b"t")]
        if request is not None:
            headers.append(("trace-id", request.trace_id.encode()))
        value = encode(request) if request else b"{not json"
        await producer.send_and_wait(
            env["WAITLINE_KAFKA_DEAD_LETTER_TOPIC"], value, key=store_key(7), headers=headers
        )
    finally:
        await producer.stop()


async def _pending(redis_url: str, prefix: str, store_id: int) -> list[str]:
    from redis.asyncio import Redis

    pending = RedisPendingRequests(Redis.from_url(redis_url), prefix=prefix)
    try:
        return [request.trace_id for request in await pending.of_store(store_id)]
    finally:
        await pending.close()
