"""The rank tree counts blocks of places, not single places (adapters/persistence/rank_tree.py):
a batch of registrations touches about one node per 64 of them. The tree is built again from the
WAITING rows there are; downgrading builds the tree of a node a place again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import sqlalchemy as sa
from alembic import op

from adapters.persistence.rank_tree import BLOCK, changes

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
    waiting: dict[tuple[int, date], list[tuple[int, int]]] = defaultdict(list)
    rows = connection.execute(
        sa.text("SELECT store_id, business_date, place FROM waitings WHERE status = 'WAITING'")
    )
    for store_id, day, place in rows:
        # SQLite hands a date back as text to a raw statement.
        waiting[store_id, day if isinstance(day, date) else date.fromisoformat(day)].append((place, 1))
    tree = [
        {"store_id": store_id, "business_date": day, "node": node, "waiting": count}
        for (store_id, day), places in waiting.items()
        for node, count in changes(places, block=block).items()
    ]
    if tree:
        op.bulk_insert(RANKS, tree)
