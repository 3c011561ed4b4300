"""Nested differences: item by item, order apart, the same with or without deepdiff."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trunksync.diffs import (
    ADDED,
    CHANGED_ITEM,
    ORDER,
    REMOVED,
    ItemChange,
    item_changes,
)


def test_numbers_added_and_removed_without_the_unchanged_ones() -> None:
    before = ["+15550100000", "+15550100001"]
    after = ["+15550100001", "+15550100002"]
    assert item_changes(before, after) == (
        ItemChange(ADDED, (1,), None, "+15550100002"),
        ItemChange(REMOVED, (0,), "+15550100000", None),
    )


def test_a_pure_reorder_is_only_order_changed() -> None:
    assert item_changes(["a", "b", "c"], ["c", "a", "b"]) == (ItemChange(ORDER, ()),)


def test_a_reorder_with_an_addition_says_both() -> None:
    assert item_changes(["a", "b"], ["b", "a", "c"]) == (
        ItemChange(ORDER, ()),
        ItemChange(ADDED, (2,), None, "c"),
    )


def test_an_addition_at_the_end_is_not_a_reorder() -> None:
    assert item_changes(["a", "b"], ["a", "b", "c"]) == (ItemChange(ADDED, (2,), None, "c"),)


def test_a_repeated_item_counts() -> None:
    assert item_changes(["a", "a"], ["a"]) == (ItemChange(REMOVED, (1,), "a", None),)
    assert item_changes(["a"], ["a", "a", "a"]) == (
        ItemChange(ADDED, (1,), None, "a"),
        ItemChange(ADDED, (2,), None, "a"),
    )


def test_objects_by_key_through_deepdiff() -> None:
    before = {"port": 5060, "hosts": ["a", "b"], "gone": 1}
    after = {"port": 5070, "hosts": ["a", "c"], "new": True}
    assert item_changes(before, after) == (
        ItemChange(ADDED, ("hosts", 1), None, "c"),
        ItemChange(ADDED, ("new",), None, True),
        ItemChange(REMOVED, ("gone",), 1, None),
        ItemChange(REMOVED, ("hosts", 1), "b", None),
        ItemChange(CHANGED_ITEM, ("port",), 5060, 5070),
    )


def test_lists_of_objects_go_through_deepdiff() -> None:
    changes = item_changes([{"n": 1}, {"n": 2}], [{"n": 2}, {"n": 1}, {"n": 3}])
    assert ItemChange(ORDER, ()) in changes
    assert [c for c in changes if c.change != ORDER] == [ItemChange(ADDED, (2,), None, {"n": 3})]
    edited = item_changes([{"n": 1}], [{"n": 2}])  # an element replaced, not a slot edited
    assert edited == (
        ItemChange(ADDED, (0,), None, {"n": 2}),
        ItemChange(REMOVED, (0,), {"n": 1}, None),
    )


def test_scalars_or_equal_values_have_no_items() -> None:
    assert item_changes(5060, 5070) == ()
    assert item_changes("a", ["a"]) == ()
    assert item_changes(["a"], ["a"]) == ()
    assert item_changes({"a": 1}, {"a": 1}) == ()


def kinds(changes: list[ItemChange]) -> Counter[tuple[str, str]]:
    """The changes as a multiset of (kind, value), positions aside."""
    return Counter(
        (change.change, repr(change.after if change.change == ADDED else change.before))
        for change in changes
    )


scalars = st.one_of(
    st.sampled_from(["+15550100000", "+15550100001", "+15550100002", "x"]),
    st.integers(min_value=0, max_value=3),
)


def multiset_oracle(before: list[Any], after: list[Any]) -> Counter[tuple[str, str]]:
    """What differs between two flat lists as multisets, computed without deepdiff."""
    old = Counter(repr(value) for value in before)
    new = Counter(repr(value) for value in after)
    return Counter(
        {("added", key): count for key, count in (new - old).items()}
        | {("removed", key): count for key, count in (old - new).items()}
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(scalars, max_size=5), st.lists(scalars, max_size=5))
def test_flat_lists_agree_with_a_multiset_oracle(before: list[Any], after: list[Any]) -> None:
    changes = [c for c in item_changes(before, after) if c.change != ORDER]
    assert kinds(changes) == multiset_oracle(before, after)
    same_items = multiset_oracle(before, after) == Counter()
    if same_items and before != after:
        assert item_changes(before, after) == (ItemChange(ORDER, ()),)
