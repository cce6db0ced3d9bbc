"""Estimates from history read each store's latest calls of the day through an index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_waitings_store_day_called", "waitings", ["store_id", "business_date", "called_at"])


def downgrade() -> None:
    op.drop_index("ix_waitings_store_day_called", table_name="waitings")
