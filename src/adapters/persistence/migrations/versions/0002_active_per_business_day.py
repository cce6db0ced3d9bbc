"""Active means today: one active waiting per customer per store and business day.

A waiting left WAITING or CALLED when its day ended no longer blocks its customer (DOMAIN.md,
"Decided since the first release"), so the partial unique index carries the business date, and
the index behind admission counts reads one store's day.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('WAITING', 'CALLED')"


def upgrade() -> None:
    op.drop_index("uq_waitings_active_customer", table_name="waitings")
    op.create_index(
        "uq_waitings_active_customer",
        "waitings",
        ["store_id", "business_date", "customer_key"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    op.drop_index("ix_waitings_store_status", table_name="waitings")
    op.create_index("ix_waitings_store_day_status", "waitings", ["store_id", "business_date", "status"])


def downgrade() -> None:
    # Going back to "active whatever the day" fails while a customer holds active waitings on
    # two days: the database then refuses, rather than quietly dropping one.
    op.drop_index("ix_waitings_store_day_status", table_name="waitings")
    op.create_index("ix_waitings_store_status", "waitings", ["store_id", "status"])
    op.drop_index("uq_waitings_active_customer", table_name="waitings")
    op.create_index(
        "uq_waitings_active_customer",
        "waitings",
        ["store_id", "customer_key"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
