"""The rank tree's batch changes: the same node totals as adding each place's path one by one;
and a prefix, the tree's whole blocks plus the rest counted, counts the places at or below."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from adapters.persistence import rank_tree

LAST = rank_tree.SIZE * rank_tree.BLOCK
places = st.one_of(st.integers(1, 3_000), st.integers(LAST - 200, LAST + 70), st.integers(-3, 0))
deltas = st.lists(st.tuples(places, st.sampled_from([1, -1])), max_size=60)
blocks = st.sampled_from([1, 2, 7, rank_tree.BLOCK])


def each_path(pairs: list[tuple[int, int]], block: int) -> dict[int, int]:
    """The definition: a change at a place touches every node whose range holds its block."""
    total: Counter[int] = Counter()
    for place, delta in pairs:
        if place >= 1 and rank_tree.block_of(place, block) <= rank_tree.SIZE:
            for node in rank_tree.nodes_above(rank_tree.block_of(place, block)):
                total[node] += delta
    return {node: delta for node, delta in sorted(total.items()) if delta}


@given(deltas, blocks)
def test_a_batch_changes_each_node_as_its_places_one_by_one_would(
    pairs: list[tuple[int, int]], block: int
) -> None:
    found = rank_tree.changes(pairs, block)
    assert found == each_path(pairs, block)
    assert list(found) == sorted(found)  # one statement's rows in node order


@given(st.integers(1, 5_000), st.integers(1, 1_000), st.integers(-2, 7_000), blocks)
def test_whole_blocks_from_the_tree_and_the_rest_counted_are_the_places_below(
    first: int, count: int, below: int, block: int
) -> None:
    """As SqlWaitings.count_waiting counts the WAITING places below `below`."""
    held = range(first, first + count)
    nodes = rank_tree.changes(((place, 1) for place in held), block)
    whole = rank_tree.whole_blocks(below - 1, block)
    from_tree = sum(nodes.get(node, 0) for node in rank_tree.nodes_below(whole))
    counted = sum(1 for place in held if whole * block < place < below)
    assert from_tree + counted == sum(1 for place in held if place < below)
    assert counted < block or whole == rank_tree.SIZE


def test_a_batch_touches_about_one_node_per_block() -> None:
    nodes = rank_tree.changes((place, 1) for place in range(10_001, 11_001))
    assert len(nodes) <= 1_000 // rank_tree.BLOCK + 2 + 20
