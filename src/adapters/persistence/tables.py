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
    Text,
    Time,
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
    Column("notify_at_rank", Integer),
    Column("max_postpones", Integer, nullable=False, server_default=text("1")),
    Column("day_starts_at", Time, nullable=False, server_default=text("'00:00:00'")),
    Column("webhook_url", String(2000)),
    Column("webhook_secret", String(100)),
    Column("paused_until", DateTime(timezone=True)),
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
    Column("cancelled_by", String(8)),
    # Queue order (domain Waiting.place): the number until a postpone hands places round.
    Column("place", Integer, nullable=False, server_default=text("0")),
    Column("postpones", Integer, nullable=False, server_default=text("0")),
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
# Lists and ranks read one store's day in queue order.
Index("ix_waitings_store_day_place", waitings.c.store_id, waitings.c.business_date, waitings.c.place)
# The estimate reads the day's last calls (domain/estimates.py): a few rows, however long the day.
Index("ix_waitings_store_day_called", waitings.c.store_id, waitings.c.business_date, waitings.c.called_at)

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

# Requests sent under an Idempotency-Key (application/idempotency.py), one row per caller and key:
# the claim of the attempt answering it, then the answer a retry gets again; forgotten after 24 h.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("caller", String(200), primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("claim", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("held_until", DateTime(timezone=True)),
    Column("status", Integer),
    Column("media_type", String(100)),
    Column("body", LargeBinary),
)
# The sweep reads the soonest expired first, however many rows there are.
Index("ix_idempotency_keys_expires_at", idempotency_keys.c.expires_at)

# When the waiting was told its turn is getting close (DOMAIN.md): set once, by the one
# transaction that finds it still unset, so however many processes announce ranks it is told once.
waitings.append_column(Column("close_notified_at", DateTime(timezone=True)))

# Webhooks to send (application/webhooks.py), kept in the transaction of the change that made them,
# so a restart loses none; each claim counts an attempt and holds the row until `next_attempt_at`.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("store_id", Id, ForeignKey("stores.id"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_error", String(500)),
    CheckConstraint("status IN ('PENDING', 'GIVEN_UP')", name="ck_webhook_deliveries_status"),
)
# The delivery workers read what is due, soonest first, however many were given up on.
Index("ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at)
