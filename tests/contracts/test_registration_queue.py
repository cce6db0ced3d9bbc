"""One contract for the registration queue, run against every implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.persistence.engine import make_engine
from adapters.persistence.schema import upgrade
from adapters.persistence.tables import queued_registrations
from adapters.queue.local import LocalRegistrationQueue
from adapters.queue.sql import SqlRegistrationQueue
from application.ports import QueueUnavailable
from application.requests import RegistrationRequest
from domain.customer import Channel
from harness.postgres import emptied


def _request(store_id: int, n: int) -> RegistrationRequest:
    return RegistrationRequest(
        trace_id=f"{store_id}-{n}",
        store_id=store_id,
        channel=Channel.USER,
        party_size=2,
        requested_at=datetime(2026, 11, 25, tzinfo=UTC),
        user_id=str(n),
    )


class Recorder:
    def __init__(
        self, failures: int = 0, poison: str = "", failing_calls: frozenset[int] = frozenset()
    ) -> None:
        """Fails its first `failures` calls, and those numbered in `failing_calls` (from 1)."""
        self.batches: list[list[str]] = []
        self.given_up: list[tuple[str, str]] = []
        self.failures, self.poison, self.failing_calls, self.calls = failures, poison, failing_calls, 0

    async def __call__(self, batch: Sequence[RegistrationRequest]) -> None:
        self.calls += 1
        if self.failures or self.calls in self.failing_calls:
            self.failures = max(self.failures - 1, 0)
            raise RuntimeError("the store is down")
        if any(request.trace_id == self.poison for request in batch):
            raise RuntimeError("this request breaks the handler")
        self.batches.append([request.trace_id for request in batch])

    def of_store(self, store_id: int) -> list[str]:
        return [t for batch in self.batches for t in batch if t.startswith(f"{store_id}-")]

    async def give_up(self, requests: Sequence[RegistrationRequest], reason: str) -> None:
        self.given_up.extend((request.trace_id, reason) for request in requests)


Queue = LocalRegistrationQueue | SqlRegistrationQueue
Queues = Callable[..., Queue]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Queues]:
    if request.param == "memory":
        yield LocalRegistrationQueue
        return
    if request.param == "postgresql":
        async with emptied(request.getfixturevalue("postgres_url")) as engine:
            yield partial(SqlRegistrationQueue, engine, idle_poll_seconds=0.05)
        return
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}")
    await upgrade(engine)
    yield partial(SqlRegistrationQueue, engine, idle_poll_seconds=0.05)
    await engine.dispose()


@pytest.fixture
def queue(make_queue: Queues) -> Queue:
    return make_queue(partitions=3, batch_size=10)


async def test_each_store_is_delivered_in_publish_order(queue: Queue) -> None:
    recorder = Recorder()
    await queue.start(recorder)
    for n in range(40):
        for store_id in (1, 2, 3, 4):
            await queue.publish(_request(store_id, n))
    await queue.stop()
    for store_id in (1, 2, 3, 4):
        assert recorder.of_store(store_id) == [f"{store_id}-{n}" for n in range(40)]


async def test_requests_arrive_in_batches(queue: Queue) -> None:
    for n in range(25):
        await queue.publish(_request(3, n))
    recorder = Recorder()
    await queue.start(recorder)
    await queue.stop()
    assert [len(batch) for batch in recorder.batches] == [10, 10, 5]


async def test_stop_finishes_what_was_queued_then_refuses(queue: Queue) -> None:
    recorder = Recorder()
    await queue.start(recorder)
    for n in range(5):
        await queue.publish(_request(1, n))
    await queue.stop()
    assert len(recorder.of_store(1)) == 5
    with pytest.raises(QueueUnavailable):
        await queue.publish(_request(1, 99))


async def test_a_failing_batch_is_retried_not_lost(queue: Queue) -> None:
    recorder = Recorder(failures=2)
    await queue.start(recorder)
    await queue.publish(_request(1, 0))
    await asyncio.wait_for(queue.stop(), timeout=5)
    assert recorder.of_store(1) == ["1-0"]


async def test_a_batch_that_failed_is_delivered_again_before_any_queued_after_it(queue: Queue) -> None:
    """The SQL queue reads a batch while the one before is decided: one that fails must not let
    that next batch through first (FIFO), nor lose or repeat it."""
    for n in range(25):
        await queue.publish(_request(1, n))
    recorder = Recorder(failing_calls=frozenset({2}))
    await queue.start(recorder)
    await asyncio.wait_for(queue.stop(), timeout=10)
    assert recorder.batches == [
        [f"1-{n}" for n in range(start, min(start + 10, 25))] for start in (0, 10, 20)
    ]
    assert queue.depth() == 0


async def test_a_batch_that_keeps_failing_is_set_aside(make_queue: Queues) -> None:
    queue, recorder = make_queue(partitions=1, attempts=2), Recorder(failures=100)
    await queue.start(recorder, recorder.give_up)
    await queue.publish(_request(1, 0))
    await asyncio.wait_for(queue.stop(), timeout=5)
    assert [r.trace_id for r in await queue.dead_letters()] == ["1-0"]
    assert (queue.dead_count(), queue.depth()) == (1, 0)
    assert recorder.given_up == [("1-0", "PROCESSING_ERROR")]  # its status becomes FAILED


async def test_what_was_queued_survives_a_restart(tmp_path: Path) -> None:
    """The embedded queue's reason to be: a request answered QUEUED is not lost with the process."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}")
    await upgrade(engine)
    before = SqlRegistrationQueue(engine)
    for n in range(3):
        await before.publish(_request(5, n))
    recorder = Recorder()
    after = SqlRegistrationQueue(engine, idle_poll_seconds=0.05)
    # What the restarted service tells pollers is still QUEUED.
    assert [r.trace_id for r in await after.all_pending()] == ["5-0", "5-1", "5-2"]
    await after.start(recorder)
    await after.stop()
    await engine.dispose()
    assert recorder.of_store(5) == ["5-0", "5-1", "5-2"]


async def test_an_unreadable_message_is_kept_as_a_dead_letter(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'poison.db'}")
    await upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(
            insert(queued_registrations).values(partition=0, store_id=7, payload=b"{not json")
        )
    queue, recorder = SqlRegistrationQueue(engine, partitions=1, idle_poll_seconds=0.05), Recorder()
    await queue.start(recorder)
    await queue.publish(_request(7, 0))
    await queue.stop()
    await engine.dispose()
    assert recorder.of_store(7) == ["7-0"]
    assert queue.dead_count() == 1


async def test_pending_lists_a_stores_unacknowledged_requests_in_order(queue: Queue) -> None:
    for n in range(3):
        await queue.publish(_request(4, n))
        await queue.publish(_request(7, n))
    assert [r.trace_id for r in await queue.pending(4)] == ["4-0", "4-1", "4-2"]
    await queue.start(Recorder())
    await queue.stop()
    assert await queue.pending(4) == []


async def test_one_bad_request_does_not_take_its_batch_down(make_queue: Queues) -> None:
    queue, recorder = make_queue(partitions=1, attempts=2), Recorder(poison="2-1")
    for n in range(3):
        await queue.publish(_request(2, n))
    await queue.start(recorder, recorder.give_up)
    await asyncio.wait_for(queue.stop(), timeout=10)
    assert recorder.of_store(2) == ["2-0", "2-2"]
    assert [r.trace_id for r in await queue.dead_letters()] == ["2-1"]
    assert recorder.given_up == [("2-1", "PROCESSING_ERROR")]


async def test_requests_published_at_once_are_delivered_in_the_order_they_were_published(
    queue: Queue,
) -> None:
    await asyncio.gather(*(queue.publish(_request(7, n)) for n in range(60)))
    recorder = Recorder()
    await queue.start(recorder)
    await queue.stop()
    assert recorder.of_store(7) == [f"7-{n}" for n in range(60)]


@pytest.fixture(params=["sqlite", "postgresql"])
async def sql_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgresql":
        async with emptied(request.getfixturevalue("postgres_url")) as engine:
            yield engine
            async with engine.begin() as connection:
                await connection.execute(text("DROP TRIGGER IF EXISTS refuse_666 ON queued_registrations"))
                await connection.execute(text("DROP FUNCTION IF EXISTS refuse_666"))
        return
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'group.db'}")
    await upgrade(engine)
    yield engine
    await engine.dispose()


async def test_requests_published_together_share_one_commit(sql_engine: AsyncEngine) -> None:
    commits = 0

    def counted(*_: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(sql_engine.sync_engine, "commit", counted)
    queue = SqlRegistrationQueue(sql_engine)
    await asyncio.gather(*(queue.publish(_request(1, n)) for n in range(50)))
    event.remove(sql_engine.sync_engine, "commit", counted)
    # All arrived before the first commit began: one commit (one fsync) answers them all.
    assert commits == 1, commits
    assert queue.depth() == 50


async def test_a_failed_group_commit_fails_every_request_in_it_and_keeps_none(
    sql_engine: AsyncEngine,
) -> None:
    await _refuse_store_666(sql_engine)
    queue = SqlRegistrationQueue(sql_engine)
    await queue.publish(_request(1, 0))
    # The four arrive together: one commit, which the database refuses because of one of them.
    answers = await asyncio.gather(
        queue.publish(_request(1, 1)),
        *(queue.publish(_request(n, 1)) for n in (2, 666, 3)),
        return_exceptions=True,
    )
    assert all(isinstance(answer, QueueUnavailable) for answer in answers), answers
    assert [r.trace_id for r in await queue.all_pending()] == ["1-0"]
    assert queue.depth() == 1
    await queue.publish(_request(1, 2))  # the queue goes on
    assert [r.trace_id for r in await queue.all_pending()] == ["1-0", "1-2"]


async def test_an_acknowledgement_that_failed_delivers_again_in_order_and_loses_nothing(
    sql_engine: AsyncEngine,
) -> None:
    """A batch was decided but its DELETE failed: it comes again (the handler decides each traceId
    once), nothing is skipped or decided out of order, and the queue ends empty."""
    failed = False

    def fail_first_delete(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        nonlocal failed
        if statement.lstrip().upper().startswith("DELETE") and not failed:
            failed = True
            raise RuntimeError("the connection dropped during the acknowledgement")

    queue = SqlRegistrationQueue(sql_engine, partitions=1, batch_size=10, idle_poll_seconds=0.05)
    for n in range(25):
        await queue.publish(_request(1, n))
    event.listen(sql_engine.sync_engine, "before_cursor_execute", fail_first_delete)
    try:
        recorder = Recorder()
        await queue.start(recorder)
        await asyncio.wait_for(queue.stop(), timeout=10)
    finally:
        event.remove(sql_engine.sync_engine, "before_cursor_execute", fail_first_delete)
    assert failed
    first = [f"1-{n}" for n in range(10)]
    # Delivered again: the deletion runs while the next batch is decided, so it may come after that.
    assert recorder.batches[0] == first and recorder.batches.count(first) == 2
    assert list(dict.fromkeys(recorder.of_store(1))) == [f"1-{n}" for n in range(25)]
    assert await queue.all_pending() == [] and queue.depth() == 0


async def _refuse_store_666(engine: AsyncEngine) -> None:
    """A write the database refuses, standing for a commit that fails (disk full, a lost server)."""
    async with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            await connection.execute(
                text(
                    "CREATE TRIGGER refuse_666 BEFORE INSERT ON queued_registrations "
                    "WHEN NEW.store_id = 666 BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
            return
        await connection.execute(
            text(
                "CREATE OR REPLACE FUNCTION refuse_666() RETURNS trigger AS $$ BEGIN "
                "IF NEW.store_id = 666 THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        await connection.execute(
            text(
                "CREATE TRIGGER refuse_666 BEFORE INSERT ON queued_registrations "
                "FOR EACH ROW EXECUTE FUNCTION refuse_666()"
            )
        )
