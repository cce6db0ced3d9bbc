"""The unit of work on SQLAlchemy Core: the same statements run on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import (
    Index,
    Integer,
    RowMapping,
    Table,
    TextClause,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.persistence import rank_tree
from adapters.persistence.alerts import SqlCloseAlerts, SqlWebhookOutbox
from adapters.persistence.copying import copy_rows
from adapters.persistence.json_rows import JsonList, insert_json_rows
from adapters.persistence.lists import one_of
from adapters.persistence.statistics import FreshStatistics
from adapters.persistence.status_tokens import same_token, selector, well_formed
from adapters.persistence.tables import ACTIVE as ACTIVE_WHERE
from adapters.persistence.tables import (
    metadata,
    registration_requests,
    store_fences,
    stores,
    waiting_ranks,
    waiting_sequences,
    waitings,
)
from application.ports import ConcurrencyConflict
from application.requests import RequestState, RequestStatus
from domain.customer import Channel, Customer
from domain.errors import AlreadyWaiting
from domain.store import Store
from domain.waiting import Canceller, Waiting, WaitingStatus
from domain.waiting_list import WaitingList

ACTIVE_CUSTOMER = "uq_waitings_active_customer"


def violated(error: IntegrityError) -> str | None:
    """The name of the unique constraint or index that refused a write, if one did."""
    # PostgreSQL names it: on asyncpg's error, behind SQLAlchemy's adapter or given as is (COPY).
    cause = getattr(error.orig, "__cause__", None) or error.orig
    if name := getattr(cause, "constraint_name", None):
        return str(name)
    # SQLite names the columns: "UNIQUE constraint failed: waitings.store_id, waitings.number"
    message = str(error.orig)
    if "UNIQUE constraint failed: " not in message:
        return None
    columns = [c.strip() for c in message.split("UNIQUE constraint failed: ", 1)[1].split(",")]
    table, names = columns[0].split(".")[0], {c.split(".")[-1] for c in columns}
    for unique in _uniques(metadata.tables[table]):
        if {column.name for column in unique.columns} == names:
            return str(unique.name)
    return None


def _uniques(table: Table) -> list[Index | UniqueConstraint]:
    found: list[Index | UniqueConstraint] = [index for index in table.indexes if index.unique]
    return found + [c for c in table.constraints if isinstance(c, UniqueConstraint)]


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite keeps no offset: store UTC, and read it back as UTC."""
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class SqlStores:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def add(self, store: Store) -> None:
        values = _store_row(store)
        result = await self._db.execute(insert(stores).values(values).returning(stores.c.id))
        store.id = result.scalar_one()

    async def get(self, store_id: int) -> Store | None:
        row = (await self._db.execute(_store_by_id(), {"store_id": store_id})).mappings().first()
        return _store(row) if row else None

    async def save(self, store: Store) -> None:
        await self._db.execute(update(stores).where(stores.c.id == store.id).values(_store_row(store)))

    async def fence(self, store_id: int, token: int) -> None:
        # One statement: the row stays locked until commit, so an older holder racing this one
        # waits, then finds the newer token and is refused.
        statement = _fence(self._db.dialect.name)
        if (await self._db.execute(statement, {"fenced": store_id, "fence": token})).rowcount != 1:
            raise ConcurrencyConflict(f"store {store_id}: the lock's lease ended; a newer holder wrote")


# The statements every registration batch runs are built once (bound by name at execution):
# building one costs about as much CPU as executing it (measured: 174 against 101 µs).


@functools.cache
def _store_by_id() -> Any:
    return select(stores).where(stores.c.id == bindparam("store_id"))


@functools.cache
def _fence(dialect: str) -> Any:
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_(store_fences).values(store_id=bindparam("fenced"), token=bindparam("fence"))
    return statement.on_conflict_do_update(
        index_elements=[store_fences.c.store_id],
        set_={"token": statement.excluded.token},
        where=store_fences.c.token <= statement.excluded.token,
    )


def _store_row(store: Store) -> dict[str, Any]:
    return {
        "name": store.name,
        "time_zone": store.time_zone,
        "waiting_open": store.waiting_open,
        "max_party_size": store.max_party_size,
        "max_queue_size": store.max_queue_size,
        "avg_service_minutes": store.avg_service_minutes,
        "notify_at_rank": store.notify_at_rank,
        "max_postpones": store.max_postpones,
        "day_starts_at": store.day_starts_at,
        "webhook_url": store.webhook_url,
        "webhook_secret": store.webhook_secret,
        "paused_until": _utc(store.paused_until),
    }


def _store(row: RowMapping) -> Store:
    return Store(
        id=row["id"],
        name=row["name"],
        time_zone=row["time_zone"],
        waiting_open=row["waiting_open"],
        max_party_size=row["max_party_size"],
        max_queue_size=row["max_queue_size"],
        avg_service_minutes=row["avg_service_minutes"],
        notify_at_rank=row["notify_at_rank"],
        max_postpones=row["max_postpones"],
        day_starts_at=row["day_starts_at"],
        webhook_url=row["webhook_url"],
        webhook_secret=row["webhook_secret"],
        paused_until=_utc(row["paused_until"]),
    )


class SqlWaitings:
    def __init__(self, connection: AsyncConnection, statistics: FreshStatistics | None = None) -> None:
        self._db, self._statistics = connection, statistics

    async def load_list(self, store: Store, business_date: date, customers: Collection[str]) -> WaitingList:
        """One round trip however long the list: the sequence and its kept counts, and which of
        the customers hold an active waiting."""
        day = {"day_store": store.id, "day_date": business_date, "customers": list(customers) or [""]}
        row = (await self._db.execute(_day_list(self._db.dialect.name), day)).first()
        # No sequence yet: nobody registered that day.
        last_number, active, waiting_now, held_keys = row or (0, 0, 0, None)
        return WaitingList(
            store=store,
            business_date=business_date,
            last_number=last_number,
            active_count=active,
            waiting_count=waiting_now,
            active_customers=_keys(held_keys),
        )

    async def save_list(self, waiting_list: WaitingList) -> None:
        new = [w for w in waiting_list.registered if w.id is None]
        if not new:
            return
        # On PostgreSQL the sequence's move reserves the new waitings' ids too (for COPY): one
        # round trip fewer than insert_new and advance.
        reserved = await self._advance(waiting_list, len(new), reserve=True)
        await self._rank(waiting_list.store.id, waiting_list.business_date, [(w.place, 1) for w in new])
        await self._insert(new, reserved)

    async def insert_new(self, waiting_list: WaitingList) -> int:
        new = [w for w in waiting_list.registered if w.id is None]
        if new:
            postgresql = self._db.dialect.name == "postgresql"
            reserved = list(await self._db.scalar(_reserve(), {"joined": len(new)})) if postgresql else None
            await self._insert(new, reserved)
        return len(new)

    async def advance(self, waiting_list: WaitingList, joined: int) -> None:
        if not joined:
            return
        await self._advance(waiting_list, joined, reserve=False)
        new = waiting_list.registered[-joined:]
        await self._rank(waiting_list.store.id, waiting_list.business_date, [(w.place, 1) for w in new])

    async def _insert(self, new: list[Waiting], reserved: list[int] | None) -> None:
        """Insert the new waitings (with their `reserved` ids, by COPY, on PostgreSQL) and give
        each its id."""
        try:
            if reserved is not None:
                records = [_new_waiting_record(w, id_) for w, id_ in zip(new, reserved, strict=True)]
                await copy_rows(self._db, waitings, NEW_WAITING_COLUMNS, records)
                ids = {w.number: id_ for w, id_ in zip(new, reserved, strict=True)}
            else:
                rows = [_waiting_row(w) for w in new]
                ids = await _insert_rows(self._db, waitings, rows, returning="number")
        except IntegrityError as error:
            if violated(error) == ACTIVE_CUSTOMER:
                raise AlreadyWaiting("this customer already holds an active waiting at this store") from error
            raise ConcurrencyConflict(f"a concurrent registration won: {error.orig}") from error
        for waiting in new:
            waiting.id = ids[waiting.number]
        if self._statistics is not None:
            self._statistics.grew(len(new))

    async def _advance(self, waiting_list: WaitingList, joined: int, reserve: bool) -> list[int] | None:
        """Move the day's sequence over the `joined` new waitings; refuse if someone else moved it
        first. With `reserve`, on PostgreSQL, the same statement reserves their ids."""
        previous = waiting_list.last_number - joined
        values = {
            "day_store": waiting_list.store.id,
            "day_date": waiting_list.business_date,
            "previous": previous,
            "last": waiting_list.last_number,
            "joined": joined,
        }
        returning = reserve and self._db.dialect.name == "postgresql"
        try:
            result = await self._db.execute(
                _start_day(returning) if previous == 0 else _advance_day(returning), values
            )
        except IntegrityError as error:
            raise ConcurrencyConflict("the day's sequence was started concurrently") from error
        if not returning:
            if result.rowcount != 1:
                raise ConcurrencyConflict("the day's sequence moved concurrently")
            return None
        if (moved := result.first()) is None:
            raise ConcurrencyConflict("the day's sequence moved concurrently")
        return list(moved[0])

    async def get(self, waiting_id: int) -> Waiting | None:
        return await self._one(waitings.c.id == waiting_id)

    async def by_status_token(self, status_token: str) -> Waiting | None:
        if not well_formed(status_token):
            return None
        waiting = await self._one(waitings.c.status_selector == selector(status_token))
        return waiting if waiting and same_token(waiting.status_token, status_token) else None

    async def _one(self, condition: Any) -> Waiting | None:
        row = (await self._db.execute(select(waitings).where(condition))).mappings().first()
        return _waiting(row) if row else None

    async def save(self, waiting: Waiting, was: WaitingStatus, was_at: int | None = None) -> None:
        values = _waiting_row(waiting)
        statement = update(waitings).where(
            waitings.c.id == waiting.id,
            waitings.c.status == str(was),
            waitings.c.place == (waiting.place if was_at is None else was_at),
        )
        try:
            result = await self._db.execute(statement.values(values))
        except IntegrityError as error:
            raise ConcurrencyConflict(str(error.orig)) from error
        if result.rowcount != 1:
            raise ConcurrencyConflict(f"waiting {waiting.id} changed concurrently")
        await self._recount(waiting, was)

    async def _recount(self, waiting: Waiting, was: WaitingStatus) -> None:
        """Keep the day's counts and rank tree in step with a waiting's new status."""
        left_active = int(was.active) - int(waiting.status.active)
        left_waiting = int(was is WaitingStatus.WAITING) - int(waiting.status is WaitingStatus.WAITING)
        if not (left_active or left_waiting):
            return
        sequence = waiting_sequences.c
        await self._db.execute(
            update(waiting_sequences)
            .where(*_day_of(waiting_sequences, waiting.store_id, waiting.business_date))
            .values(
                active_count=sequence.active_count - left_active,
                waiting_count=sequence.waiting_count - left_waiting,
            )
        )
        if left_waiting:
            await self._rank(waiting.store_id, waiting.business_date, [(waiting.place, -left_waiting)])

    async def _rank(self, store_id: int, business_date: date, deltas: list[tuple[int, int]]) -> None:
        """Add the (place, +1/-1) changes to the day's rank tree: one statement for a batch."""
        rows = [
            {"store_id": store_id, "business_date": business_date, "node": node, "waiting": delta}
            for node, delta in rank_tree.changes(deltas).items()
        ]
        if not rows:
            return
        if self._db.dialect.name == "postgresql":
            columns = tuple(rows[0])
            await self._db.execute(_unnest_insert(waiting_ranks, columns, None, RANK_UPSERT), _arrays(rows))
        else:
            # Executed for many rows: one statement, compiled once (a multi-row VALUES of another
            # length every batch was compiled anew, most of a drain's time).
            await self._db.execute(_sqlite_rank_upsert(), rows)

    async def of_store(
        self,
        store_id: int,
        business_date: date,
        status: WaitingStatus | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[Waiting]:
        query = select(waitings).where(
            waitings.c.store_id == store_id, waitings.c.business_date == business_date
        )
        if status is not None:
            query = query.where(waitings.c.status == str(status))
        if after is not None:
            query = query.where(waitings.c.place > after)
        rows = (await self._db.execute(query.order_by(waitings.c.place).limit(limit))).mappings()
        return [_waiting(row) for row in rows]

    async def last_calls(self, store_id: int, business_date: date, most: int) -> list[datetime]:
        latest = await self._db.scalars(
            _last_calls(), {"day_store": store_id, "day_date": business_date, "most": most}
        )
        return [moment for moment in map(_utc, latest.all()) if moment is not None]

    async def count_waiting(self, store_id: int, business_date: date, below: int | None = None) -> int:
        """The day's kept WAITING count; or, below a place, in one statement: the rank tree's sum
        over the blocks wholly below (at most 21 rows), and the rows of the rest counted (fewer
        than a block's places, by the place index)."""
        if below is None:
            kept = select(waiting_sequences.c.waiting_count).where(
                *_day_of(waiting_sequences, store_id, business_date)
            )
            return int(await self._db.scalar(kept) or 0)
        if below <= 1:
            return 0
        whole = rank_tree.whole_blocks(below - 1)
        tree = select(func.coalesce(func.sum(waiting_ranks.c.waiting), 0)).where(
            *_day_of(waiting_ranks, store_id, business_date),
            waiting_ranks.c.node.in_(list(rank_tree.nodes_below(whole)) or [0]),
        )
        rest = select(func.count()).where(
            *_day_of(waitings, store_id, business_date),
            waitings.c.status == str(WaitingStatus.WAITING),
            waitings.c.place > whole * rank_tree.BLOCK,
            waitings.c.place < below,
        )
        return int(await self._db.scalar(select(tree.scalar_subquery() + rest.scalar_subquery())) or 0)


def _day_of(table: Table, store_id: int, business_date: date) -> tuple[Any, Any]:
    return table.c.store_id == store_id, table.c.business_date == business_date


def _the_day(table: Table) -> tuple[Any, Any]:
    """`_day_of`, bound at execution as :day_store and :day_date (a column's own name is taken
    in an INSERT's or UPDATE's values)."""
    return table.c.store_id == bindparam("day_store"), table.c.business_date == bindparam("day_date")


@functools.cache
def _day_list(dialect: str) -> Any:
    if dialect == "sqlite":
        return _SQLITE_DAY_LIST
    held = (
        select(_aggregate_keys(dialect, waitings.c.customer_key))
        .where(*_the_day(waitings), text(ACTIVE_WHERE), one_of(dialect, waitings.c.customer_key, "customers"))
        .scalar_subquery()
    )
    sequence = waiting_sequences.c
    return select(sequence.last_number, sequence.active_count, sequence.waiting_count, held).where(
        *_the_day(waiting_sequences)
    )


# On SQLite, by the partial index of active customers, named: unprompted, SQLite's planner took
# (store, day, status) and read every active entry of the day (measured: 1.9 ms for a V2 batch
# of 63 on a day of 9,450, growing with the day; 0.04 ms by the index). SQLAlchemy renders no
# table hint for SQLite, hence the text. The index's own condition is repeated word for word:
# SQLite uses a partial index only for a query that states it.
_SQLITE_DAY_LIST = text(
    "SELECT s.last_number, s.active_count, s.waiting_count, "
    "(SELECT json_group_array(w.customer_key) FROM waitings AS w INDEXED BY uq_waitings_active_customer "
    f"WHERE w.store_id = :day_store AND w.business_date = :day_date AND {ACTIVE_WHERE} "
    "AND w.customer_key IN (SELECT value FROM json_each(:customers))) "
    "FROM waiting_sequences AS s WHERE s.store_id = :day_store AND s.business_date = :day_date"
).bindparams(
    bindparam("day_store", type_=waiting_sequences.c.store_id.type),
    bindparam("day_date", type_=waiting_sequences.c.business_date.type),
    bindparam("customers", type_=JsonList()),
)


@functools.cache
def _start_day(returning: bool) -> Any:
    joined = bindparam("joined", type_=Integer)
    statement = insert(waiting_sequences).values(
        store_id=bindparam("day_store"),
        business_date=bindparam("day_date"),
        last_number=bindparam("last"),
        active_count=joined,
        waiting_count=joined,
    )
    return statement.returning(_reserved_ids()) if returning else statement


@functools.cache
def _advance_day(returning: bool) -> Any:
    sequence, joined = waiting_sequences.c, bindparam("joined", type_=Integer)
    statement = (
        update(waiting_sequences)
        .where(*_the_day(waiting_sequences), sequence.last_number == bindparam("previous"))
        .values(
            last_number=bindparam("last"),
            active_count=sequence.active_count + joined,
            waiting_count=sequence.waiting_count + joined,
        )
    )
    return statement.returning(_reserved_ids()) if returning else statement


@functools.cache
def _reserve() -> Any:
    return select(_reserved_ids())


def _reserved_ids() -> Any:
    """:joined new ids from the waitings' own sequence, drawn by the statement that returns them."""
    drawn = func.nextval(func.pg_get_serial_sequence("waitings", "id"))
    return (
        select(func.array_agg(drawn))
        .select_from(func.generate_series(1, bindparam("joined", type_=Integer)))
        .scalar_subquery()
    )


@functools.cache
def _last_calls() -> Any:
    return (
        select(waitings.c.called_at)
        .where(*_the_day(waitings), waitings.c.called_at.is_not(None))
        .order_by(waitings.c.called_at.desc())
        .limit(bindparam("most"))
    )


async def _insert_rows(
    db: AsyncConnection, table: Table, rows: list[dict[str, Any]], returning: str | None = None
) -> dict[Any, int]:
    """Insert rows in one statement; with `returning`, their ids by that column's value.

    On PostgreSQL the rows travel as one array per column (`INSERT ... SELECT FROM unnest`):
    a batch of 200 waitings is then 19 parameters to bind, not 3,800 to compile and send. On
    SQLite as one JSON array (`insert_json_rows`).
    """
    if db.dialect.name != "postgresql":
        result = await insert_json_rows(db, table, rows, returning)
        return {row[0]: row[1] for row in result} if returning else {}
    result = await db.execute(_unnest_insert(table, tuple(rows[0]), returning), _arrays(rows))
    return {row[0]: row[1] for row in result} if returning else {}


def _arrays(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows as one array per column, bound as :c0, :c1, ... in `_unnest_insert`'s order."""
    return {f"c{i}": [row[column] for row in rows] for i, column in enumerate(rows[0])}


# The nodes of a batch are distinct (rank_tree.changes sums by node), as ON CONFLICT requires.
RANK_UPSERT = " ON CONFLICT (store_id, business_date, node) DO UPDATE SET waiting = waiting_ranks.waiting + excluded.waiting"


@functools.cache
def _sqlite_rank_upsert() -> Any:
    statement = sqlite_insert(waiting_ranks)
    key = [waiting_ranks.c.store_id, waiting_ranks.c.business_date, waiting_ranks.c.node]
    return statement.on_conflict_do_update(
        index_elements=key, set_={"waiting": waiting_ranks.c.waiting + statement.excluded.waiting}
    )


@functools.cache
def _unnest_insert(
    table: Table, columns: tuple[str, ...], returning: str | None, then: str = ""
) -> TextClause:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    arrays = ", ".join(
        f"CAST(:c{i} AS {table.c[column].type.compile(dialect=dialect)}[])"
        for i, column in enumerate(columns)
    )
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}){then}"
    if returning:
        sql += f" RETURNING {returning}, id"
    return text(sql)


def _aggregate_keys(dialect: str, column: Any) -> Any:
    """The customer keys as one value: an array on PostgreSQL, a JSON array on SQLite."""
    return func.array_agg(column) if dialect == "postgresql" else func.json_group_array(column)


def _keys(aggregated: list[str] | str | None) -> set[str]:
    if aggregated is None:
        return set()
    return set(json.loads(aggregated) if isinstance(aggregated, str) else aggregated)


def _waiting_row(waiting: Waiting) -> dict[str, Any]:
    customer = waiting.customer
    return {
        "store_id": waiting.store_id,
        "business_date": waiting.business_date,
        "number": waiting.number,
        "channel": str(customer.channel),
        "customer_key": customer.key,
        "user_id": customer.user_id,
        "name": customer.name,
        "phone_number": customer.phone_number,
        "party_size": waiting.party_size,
        "status": str(waiting.status),
        "trace_id": waiting.trace_id,
        "status_token": waiting.status_token,
        "status_selector": selector(waiting.status_token),
        "created_at": _utc(waiting.created_at),
        "called_at": _utc(waiting.called_at),
        "seated_at": _utc(waiting.seated_at),
        "cancelled_at": _utc(waiting.cancelled_at),
        "no_show_at": _utc(waiting.no_show_at),
        "cancelled_by": waiting.cancelled_by and str(waiting.cancelled_by),
        "place": waiting.place,
        "postpones": waiting.postpones,
    }


# A new waiting's columns for COPY, its id first; the rest take their defaults (all NULL or 0).
NEW_WAITING_COLUMNS = (
    "id",
    "store_id",
    "business_date",
    "number",
    "channel",
    "customer_key",
    "user_id",
    "name",
    "phone_number",
    "party_size",
    "status",
    "trace_id",
    "status_token",
    "status_selector",
    "created_at",
    "place",
)


def _new_waiting_record(waiting: Waiting, id_: int) -> tuple[Any, ...]:
    """`_waiting_row` as a tuple of NEW_WAITING_COLUMNS, for a waiting just registered (a thousand
    per batch: built straight, without the dict, was a tenth of the worker's time)."""
    assert waiting.called_at is None and waiting.postpones == 0 and waiting.cancelled_by is None
    customer = waiting.customer
    return (
        id_,
        waiting.store_id,
        waiting.business_date,
        waiting.number,
        str(customer.channel),
        customer.key,
        customer.user_id,
        customer.name,
        customer.phone_number,
        waiting.party_size,
        str(waiting.status),
        waiting.trace_id,
        waiting.status_token,
        selector(waiting.status_token),
        _utc(waiting.created_at),
        waiting.place,
    )


def _waiting(row: RowMapping) -> Waiting:
    customer = Customer(
        Channel(row["channel"]), user_id=row["user_id"], name=row["name"], phone_number=row["phone_number"]
    )
    created_at = _utc(row["created_at"])
    assert created_at is not None
    return Waiting(
        id=row["id"],
        store_id=row["store_id"],
        business_date=row["business_date"],
        number=row["number"],
        customer=customer,
        party_size=row["party_size"],
        trace_id=row["trace_id"],
        status_token=row["status_token"],
        created_at=created_at,
        status=WaitingStatus(row["status"]),
        called_at=_utc(row["called_at"]),
        seated_at=_utc(row["seated_at"]),
        cancelled_at=_utc(row["cancelled_at"]),
        no_show_at=_utc(row["no_show_at"]),
        cancelled_by=row["cancelled_by"] and Canceller(row["cancelled_by"]),
        place=row["place"],
        postpones=row["postpones"],
    )


class SqlRequests:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    async def decided(self, trace_ids: Collection[str]) -> dict[str, RequestStatus]:
        # A NUL byte cannot even be compared by PostgreSQL: such an id names no request.
        wanted = [trace_id for trace_id in trace_ids if "\x00" not in trace_id]
        if not wanted:
            return {}
        rows = (await self._db.execute(_decided(self._db.dialect.name), {"trace_ids": wanted})).mappings()
        return {
            row["trace_id"]: RequestStatus(
                trace_id=row["trace_id"],
                store_id=row["store_id"],
                state=RequestState(row["state"]),
                user_id=row["user_id"],
                waiting_id=row["waiting_id"],
                reason=row["reason"],
            )
            for row in rows
        }

    async def record(self, *statuses: RequestStatus) -> None:
        if not statuses:
            return
        records = [
            (
                status.trace_id,
                status.store_id,
                str(status.state),
                status.user_id,
                status.waiting_id,
                status.reason,
            )
            for status in statuses
        ]
        try:
            if self._db.dialect.name == "postgresql":
                await copy_rows(self._db, registration_requests, OUTCOME_COLUMNS, records)
            else:
                rows = [dict(zip(OUTCOME_COLUMNS, record, strict=True)) for record in records]
                await _insert_rows(self._db, registration_requests, rows)
        except IntegrityError as error:
            raise ConcurrencyConflict("a request was decided concurrently") from error


OUTCOME_COLUMNS = ("trace_id", "store_id", "state", "user_id", "waiting_id", "reason")


@functools.cache
def _decided(dialect: str) -> Any:
    return select(registration_requests).where(one_of(dialect, registration_requests.c.trace_id, "trace_ids"))


class SqlUnitOfWork:
    """One connection, one transaction: rolled back on exit unless committed."""

    stores: SqlStores
    waitings: SqlWaitings
    requests: SqlRequests
    close_alerts: SqlCloseAlerts
    webhooks: SqlWebhookOutbox

    def __init__(self, engine: AsyncEngine, statistics: FreshStatistics | None = None) -> None:
        self._engine, self._statistics = engine, statistics
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        self._connection = await self._engine.connect()
        await self._connection.begin()
        self.stores = SqlStores(self._connection)
        self.waitings = SqlWaitings(self._connection, self._statistics)
        self.requests = SqlRequests(self._connection)
        self.close_alerts = SqlCloseAlerts(self._connection)
        self.webhooks = SqlWebhookOutbox(self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        try:
            if self._connection.in_transaction():
                await self._connection.rollback()
        finally:
            await self._connection.close()
            self._connection = None

    async def commit(self) -> None:
        assert self._connection is not None
        try:
            await self._connection.commit()
        except IntegrityError as error:
            raise ConcurrencyConflict(str(error.orig)) from error
