"""The rank tree's batch changes: the same node totals as adding each number's path one by one."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from adapters.persistence import rank_tree

numbers = st.one_of(
    st.integers(1, 300), st.integers(rank_tree.SIZE - 40, rank_tree.SIZE + 5), st.integers(-3, 0)
)
deltas = st.lists(st.tuples(numbers, st.sampled_from([1, -1])), max_size=60)


def each_path(pairs: list[tuple[int, int]]) -> dict[int, int]:
    """The definition: a change at a number touches every node whose range holds it."""
    total: Counter[int] = Counter()
    for number, delta in pairs:
        if 1 <= number <= rank_tree.SIZE:
            for node in rank_tree.nodes_above(number):
                total[node] += delta
    return {node: delta for node, delta in sorted(total.items()) if delta}


@given(deltas)
def test_a_batch_changes_each_node_as_its_numbers_one_by_one_would(pairs: list[tuple[int, int]]) -> None:
    found = rank_tree.changes(pairs)
    assert found == each_path(pairs)
    assert list(found) == sorted(found)  # one statement's rows in node order


@given(st.integers(1, 2_000), st.integers(1, 400), st.integers(1, 2_000))
def test_prefix_sums_count_the_numbers_at_or_below(first: int, count: int, below: int) -> None:
    nodes = rank_tree.changes((number, 1) for number in range(first, first + count))
    counted = sum(nodes.get(node, 0) for node in rank_tree.nodes_below(below))
    assert counted == len(range(first, min(first + count - 1, below) + 1))
