"""Store tools: each store's getting-close rank, postpone limit, start of its business day,
webhook and pause; and who cancelled a waiting (the day's stats tell the customer's from the
store's).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy): SQLite adds and drops columns in place, and copying
    # `stores` would trip the foreign keys that point at it.
    op.add_column("stores", sa.Column("notify_at_rank", sa.Integer))
    op.add_column(
        "stores", sa.Column("max_postpones", sa.Integer, nullable=False, server_default=sa.text("1"))
    )
    op.add_column(
        "stores", sa.Column("day_starts_at", sa.Time, nullable=False, server_default=sa.text("'00:00:00'"))
    )
    op.add_column("stores", sa.Column("webhook_url", sa.String(2000)))
    op.add_column("stores", sa.Column("webhook_secret", sa.String(100)))
    op.add_column("stores", sa.Column("paused_until", sa.DateTime(timezone=True)))
    # Existing stores get what a new store gets (DOMAIN.md): getting close at rank 3.
    op.execute("UPDATE stores SET notify_at_rank = 3")
    op.add_column("waitings", sa.Column("cancelled_by", sa.String(8)))


def downgrade() -> None:
    op.drop_column("waitings", "cancelled_by")
    for column in (
        "paused_until",
        "webhook_secret",
        "webhook_url",
        "day_starts_at",
        "max_postpones",
        "notify_at_rank",
    ):
        op.drop_column("stores", column)
