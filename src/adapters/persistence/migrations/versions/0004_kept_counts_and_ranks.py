"""Counts kept, not counted: each store's day keeps its active and WAITING counts beside its
sequence, and its WAITING entries as a Fenwick tree of rank rows (adapters/persistence/rank_tree.py).
Both are filled from the rows that exist.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.persistence.rank_tree import tree_rows

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COUNTS = """
UPDATE waiting_sequences SET
  active_count = (SELECT count(*) FROM waitings w WHERE w.store_id = waiting_sequences.store_id
                  AND w.business_date = waiting_sequences.business_date
                  AND w.status IN ('WAITING', 'CALLED')),
  waiting_count = (SELECT count(*) FROM waitings w WHERE w.store_id = waiting_sequences.store_id
                   AND w.business_date = waiting_sequences.business_date AND w.status = 'WAITING')
"""


def upgrade() -> None:
    for name in ("active_count", "waiting_count"):
        op.add_column(
            "waiting_sequences", sa.Column(name, sa.Integer, nullable=False, server_default=sa.text("0"))
        )
    ranks = op.create_table(
        "waiting_ranks",
        sa.Column("store_id", Id, sa.ForeignKey("stores.id"), primary_key=True),
        sa.Column("business_date", sa.Date, primary_key=True),
        sa.Column("node", sa.Integer, primary_key=True),
        sa.Column("waiting", sa.Integer, nullable=False),
    )
    connection = op.get_bind()
    connection.execute(sa.text(COUNTS))
    rows = connection.execute(
        sa.text("SELECT store_id, business_date, number FROM waitings WHERE status = 'WAITING'")
    )
    tree = tree_rows([(row[0], row[1], row[2]) for row in rows], block=1)  # a node a number, as then
    if tree:
        op.bulk_insert(ranks, tree)


def downgrade() -> None:
    op.drop_table("waiting_ranks")
    with op.batch_alter_table("waiting_sequences") as table:
        table.drop_column("waiting_count")
        table.drop_column("active_count")
