"""The schema of the first release (until then made by create_all).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

# SQLite gives automatic ids only to INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = "status IN ('WAITING', 'CALLED')"


def upgrade() -> None:
    op.create_table(
        "stores",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("waiting_open", sa.Boolean, nullable=False),
        sa.Column("max_party_size", sa.Integer, nullable=False),
        sa.Column("max_queue_size", sa.Integer),
        sa.Column("avg_service_minutes", sa.Integer),
        sa.CheckConstraint("max_party_size >= 1", name="ck_stores_max_party_size"),
    )
    op.create_table(
        "waiting_sequences",
        sa.Column("store_id", Id, sa.ForeignKey("stores.id"), primary_key=True),
        sa.Column("business_date", sa.Date, primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    op.create_table(
        "waitings",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("store_id", Id, sa.ForeignKey("stores.id"), nullable=False),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("customer_key", sa.String(120), nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("name", sa.String(50)),
        sa.Column("phone_number", sa.String(20)),
        sa.Column("party_size", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("status_token", sa.String(64), nullable=False),
        sa.Column("status_selector", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True)),
        sa.Column("seated_at", sa.DateTime(timezone=True)),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
        sa.Column("no_show_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("store_id", "business_date", "number", name="uq_waitings_number"),
        sa.UniqueConstraint("trace_id", name="uq_waitings_trace_id"),
        sa.UniqueConstraint("status_selector", name="uq_waitings_status_selector"),
        sa.CheckConstraint("party_size >= 1", name="ck_waitings_party_size"),
        sa.CheckConstraint("number >= 1", name="ck_waitings_number"),
        sa.CheckConstraint(
            "status IN ('WAITING', 'CALLED', 'SEATED', 'CANCELLED', 'NO_SHOW')", name="ck_waitings_status"
        ),
        sa.CheckConstraint("channel IN ('USER', 'APP')", name="ck_waitings_channel"),
    )
    op.create_index(
        "uq_waitings_active_customer",
        "waitings",
        ["store_id", "customer_key"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_index("ix_waitings_store_status", "waitings", ["store_id", "status"])
    op.create_table(
        "registration_requests",
        sa.Column("trace_id", sa.String(64), primary_key=True),
        sa.Column("store_id", Id, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("waiting_id", Id),
        sa.Column("reason", sa.String(32)),
        sa.CheckConstraint("state IN ('REGISTERED', 'REJECTED')", name="ck_requests_state"),
    )
    op.create_table(
        "queued_registrations",
        sa.Column("seq", Id, primary_key=True, autoincrement=True),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("store_id", Id, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("dead", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("error", sa.String(500)),
    )
    op.create_index("ix_queued_registrations_next", "queued_registrations", ["partition", "dead", "seq"])
    op.create_index("ix_queued_registrations_store", "queued_registrations", ["store_id", "seq"])


def downgrade() -> None:
    for table in ("queued_registrations", "registration_requests", "waitings", "waiting_sequences", "stores"):
        op.drop_table(table)
