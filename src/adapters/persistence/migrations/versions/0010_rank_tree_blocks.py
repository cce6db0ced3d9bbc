"""The rank tree counts blocks of places, not single places (adapters/persistence/rank_tree.py):
a batch of registrations touches about one node per 64 of them. The tree is built again from the
WAITING rows there are; downgrading builds the tree of a node a place again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.persistence.rank_tree import BLOCK, tree_rows

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

RANKS = sa.table(
    "waiting_ranks",
    sa.column("store_id", sa.BigInteger),
    sa.column("business_date", sa.Date),
    sa.column("node", sa.Integer),
    sa.column("waiting", sa.Integer),
)


def upgrade() -> None:
    _rebuild(BLOCK)


def downgrade() -> None:
    _rebuild(1)


def _rebuild(block: int) -> None:
    connection = op.get_bind()
    connection.execute(sa.text("DELETE FROM waiting_ranks"))
    rows = connection.execute(
        sa.text("SELECT store_id, business_date, place FROM waitings WHERE status = 'WAITING'")
    )
    tree = tree_rows([(row[0], row[1], row[2]) for row in rows], block=block)
    if tree:
        op.bulk_insert(RANKS, tree)
