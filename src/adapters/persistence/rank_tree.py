"""A Fenwick tree (binary indexed tree) over a store's day of numbers, kept as rows: how many
WAITING entries are numbered at or below n, in O(log n) rows read and written.

Node i holds the WAITING count of the numbers (i - lowbit(i), i]. A registration adds 1 at its
number, a departure from WAITING takes 1 away: each touches the nodes on the way up to `SIZE`.
A prefix (WAITING below some number: the rank less one) sums the nodes on the way down to 0.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator

# The numbers one store's day can have in the tree (about a million): a number above it is
# ranked by counting rows instead (see SqlWaitings.count_waiting).
SIZE = 1 << 20


def _lowbit(i: int) -> int:
    return i & -i


def nodes_above(number: int) -> Iterator[int]:
    """The nodes whose range holds `number`: those a change at `number` updates."""
    node = number
    while node <= SIZE:
        yield node
        node += _lowbit(node)


def nodes_below(number: int) -> Iterator[int]:
    """The nodes whose ranges together are exactly (0, number]: those a prefix sums."""
    node = min(number, SIZE)
    while node > 0:
        yield node
        node -= _lowbit(node)


def changes(deltas: Iterable[tuple[int, int]]) -> dict[int, int]:
    """(number, +1 or -1) pairs as one change per node (those that cancel out left out), so that a
    batch of registrations is one statement however many numbers it holds.

    Each node's change passes on to its parent once it is complete, smallest node first (a
    parent is always larger than its children): a batch of n consecutive numbers costs about
    n + log(SIZE) steps, not n * log(SIZE).
    """
    total: Counter[int] = Counter()
    for number, delta in deltas:
        if 1 <= number <= SIZE:  # beyond the tree: counted from the rows
            total[number] += delta
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
