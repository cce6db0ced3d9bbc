"""The schema. The constraints are the second line of defence behind the lock and the domain.

Alembic owns how a database gets here (`migrations/versions`); a change to these tables comes with
a revision, and a test checks that the two never drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# SQLite gives automatic ids only to INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")
ACTIVE = "status IN ('WAITING', 'CALLED')"

stores = Table(
    "stores",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("waiting_open", Boolean, nullable=False),
    Column("max_party_size", Integer, nullable=False),
    Column("max_queue_size", Integer),
    Column("avg_service_minutes", Integer),
    CheckConstraint("max_party_size >= 1", name="ck_stores_max_party_size"),
)

waiting_sequences = Table(
    "waiting_sequences",
    metadata,
    Column("store_id", Id, ForeignKey("stores.id"), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("last_number", Integer, nullable=False),
    # Kept with every change, in its transaction: admission and the public view read a row
    # rather than count the day's list.
    Column("active_count", Integer, nullable=False, server_default=text("0")),
    Column("waiting_count", Integer, nullable=False, server_default=text("0")),
)

# The day's WAITING entries as a Fenwick tree over their numbers (adapters/persistence/rank_tree.py):
# a rank is a sum of at most 21 rows, kept with every change, in its transaction.
waiting_ranks = Table(
    "waiting_ranks",
    metadata,
    Column("store_id", Id, ForeignKey("stores.id"), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("node", Integer, primary_key=True),
    Column("waiting", Integer, nullable=False),
)

waitings = Table(
    "waitings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("store_id", Id, ForeignKey("stores.id"), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("number", Integer, nullable=False),
    Column("channel", String(8), nullable=False),
    Column("customer_key", String(120), nullable=False),
    Column("user_id", String(200)),
    Column("name", String(50)),
    Column("phone_number", String(20)),
    Column("party_size", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("trace_id", String(64), nullable=False),
    Column("status_token", String(64), nullable=False),
    # The token's first characters, to find the row; the rest is compared in constant time.
    Column("status_selector", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("called_at", DateTime(timezone=True)),
    Column("seated_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("no_show_at", DateTime(timezone=True)),
    UniqueConstraint("store_id", "business_date", "number", name="uq_waitings_number"),
    UniqueConstraint("trace_id", name="uq_waitings_trace_id"),
    UniqueConstraint("status_selector", name="uq_waitings_status_selector"),
    CheckConstraint("party_size >= 1", name="ck_waitings_party_size"),
    CheckConstraint("number >= 1", name="ck_waitings_number"),
    CheckConstraint(
        "status IN ('WAITING', 'CALLED', 'SEATED', 'CANCELLED', 'NO_SHOW')", name="ck_waitings_status"
    ),
    CheckConstraint("channel IN ('USER', 'APP')", name="ck_waitings_channel"),
)

# One active waiting per customer per store and business day, whatever the code above does.
Index(
    "uq_waitings_active_customer",
    waitings.c.store_id,
    waitings.c.business_date,
    waitings.c.customer_key,
    unique=True,
    sqlite_where=text(ACTIVE),
    postgresql_where=text(ACTIVE),
)
# Admission counts and ranks read one store's day by status.
Index("ix_waitings_store_day_status", waitings.c.store_id, waitings.c.business_date, waitings.c.status)

# The largest fencing token of the store's lock that a write was made under: a holder whose lease
# ended (paused, then resumed) brings a smaller one, and its write is refused.
store_fences = Table(
    "store_fences",
    metadata,
    Column("store_id", Id, ForeignKey("stores.id"), primary_key=True),
    Column("token", BigInteger, nullable=False),
)

registration_requests = Table(
    "registration_requests",
    metadata,
    Column("trace_id", String(64), primary_key=True),
    Column("store_id", Id, nullable=False),
    Column("state", String(16), nullable=False),
    Column("user_id", String(200)),
    Column("waiting_id", Id),
    Column("reason", String(32)),
    CheckConstraint("state IN ('REGISTERED', 'REJECTED')", name="ck_requests_state"),
)

# The embedded registration queue (adapters/queue/sql.py): a durable log per partition, so that a
# request answered 202 survives a crash of the process.
queued_registrations = Table(
    "queued_registrations",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("partition", Integer, nullable=False),
    Column("store_id", Id, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("dead", Boolean, nullable=False, server_default=text("false")),
    Column("error", String(500)),
)
Index(
    "ix_queued_registrations_next",
    queued_registrations.c.partition,
    queued_registrations.c.dead,
    queued_registrations.c.seq,
)
Index("ix_queued_registrations_store", queued_registrations.c.store_id, queued_registrations.c.seq)
