"""Queue order apart from numbers: each waiting's place in the queue (its number until a postpone)
and how often it postponed. The rank tree is over places from now on; places start equal to
numbers, so the tree's rows stay right as they are.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("waitings", sa.Column("place", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.add_column("waitings", sa.Column("postpones", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.execute("UPDATE waitings SET place = number")
    op.create_index("ix_waitings_store_day_place", "waitings", ["store_id", "business_date", "place"])


def downgrade() -> None:
    op.drop_index("ix_waitings_store_day_place", table_name="waitings")
    op.drop_column("waitings", "postpones")
    op.drop_column("waitings", "place")
