"""A Fenwick tree (binary indexed tree) over a store's day of places, kept as rows: how many
WAITING entries have a place in the day's first blocks, in O(log n) rows read and written.

Places are grouped in blocks of `BLOCK` (block b holds the places ((b - 1) * BLOCK, b * BLOCK]),
and node i of the tree holds the WAITING count of the blocks (i - lowbit(i), i]. A registration
adds 1 at its place's block, a departure from WAITING takes 1 away: each touches the nodes on the
way up to `SIZE`. A prefix sums the nodes on the way down to 0; the places of a block only partly
below are counted from the rows (at most BLOCK - 1 of them, by the place index).

Why blocks: a batch of n registrations has consecutive places, so it touches about n / BLOCK
nodes, not n (measured: the tree's upsert was 18 of a 1,000 batch's 130 ms with a node a place).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

# Places a node's block holds; 1 is the tree of the first release (migration 0004), a node a place.
BLOCK = 64
# The blocks one store's day can have in the tree (about a million): a place beyond them is
# ranked by counting rows instead (see SqlWaitings.count_waiting).
SIZE = 1 << 20


def _lowbit(i: int) -> int:
    return i & -i


def block_of(place: int, block: int = BLOCK) -> int:
    return (place - 1) // block + 1


def whole_blocks(places: int, block: int = BLOCK) -> int:
    """How many blocks lie wholly within the places 1..`places`, as far as the tree reaches."""
    return min(max(places, 0) // block, SIZE)


def nodes_above(block: int) -> Iterator[int]:
    """The nodes whose range holds `block`: those a change in it updates."""
    node = block
    while node <= SIZE:
        yield node
        node += _lowbit(node)


def nodes_below(blocks: int) -> Iterator[int]:
    """The nodes whose ranges together are exactly the blocks (0, blocks]: those a prefix sums."""
    node = min(blocks, SIZE)
    while node > 0:
        yield node
        node -= _lowbit(node)


def changes(deltas: Iterable[tuple[int, int]], block: int = BLOCK) -> dict[int, int]:
    """(place, +1 or -1) pairs as one change per node (those that cancel out left out), so that a
    batch of registrations is one statement however many places it holds.

    Each node's change passes on to its parent once it is complete, smallest node first (a
    parent is always larger than its children): a batch costs about its blocks + log(SIZE)
    steps, not blocks * log(SIZE).
    """
    total: Counter[int] = Counter()
    for place, delta in deltas:
        if place >= 1 and (node := block_of(place, block)) <= SIZE:  # beyond: counted from the rows
            total[node] += delta
    pending = list(total)
    heapq.heapify(pending)
    found: dict[int, int] = {}
    while pending:
        node = heapq.heappop(pending)
        delta = total[node]
        if not delta:
            continue
        found[node] = delta
        parent = node + _lowbit(node)
        if parent <= SIZE:
            if parent not in total:
                heapq.heappush(pending, parent)
            total[parent] += delta
    return found


def tree_rows(entries: Iterable[tuple[int, date | str, int]], block: int = BLOCK) -> list[dict[str, Any]]:
    """The `waiting_ranks` rows of every store's day, built from its WAITING entries given as
    (store_id, business_date, place): what a migration fills the tree with."""
    days: defaultdict[tuple[int, date], list[tuple[int, int]]] = defaultdict(list)
    for store_id, day, place in entries:
        # SQLite hands a date back as text to a raw statement.
        days[store_id, day if isinstance(day, date) else date.fromisoformat(day)].append((place, 1))
    return [
        {"store_id": store_id, "business_date": day, "node": node, "waiting": count}
        for (store_id, day), places in days.items()
        for node, count in changes(places, block).items()
    ]
