"""Nested differences inside one field's value (a list of numbers, an object), item by item.

deepdiff does the comparison. It is imported only when a list or an object
really differs, so a plan with nothing changed (the common run in CI) never
pays for importing it; tests/test_plan_remote.py checks that with -X importtime.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, NamedTuple

ADDED, REMOVED, CHANGED_ITEM, ORDER = "added", "removed", "changed", "order"
ITEM_CHANGES = (ADDED, REMOVED, CHANGED_ITEM, ORDER)

PathPart = str | int


class ItemChange(NamedTuple):
    """One difference inside a field's value.

    `path` leads from the field's value to the item (list indexes, object keys);
    it is empty for ORDER, which says the same items now come in another order.
    For ADDED, `before` is None; for REMOVED, `after` is None.
    """

    change: str
    path: tuple[PathPart, ...]
    before: Any = None
    after: Any = None


def is_nested(before: Any, after: Any) -> bool:
    """Whether two values are both lists or both objects, so differ item by item."""
    return (isinstance(before, list) and isinstance(after, list)) or (
        isinstance(before, dict) and isinstance(after, dict)
    )


def item_changes(before: Any, after: Any) -> tuple[ItemChange, ...]:
    """The items that differ between two lists or two objects; () for anything else."""
    if not is_nested(before, after) or before == after:
        return ()
    found = deepdiff_changes(before, after)
    found.sort(key=_order_key)
    if isinstance(before, list) and _order_changed(before, after, found):
        found.insert(0, ItemChange(ORDER, ()))
    return tuple(found)


def deepdiff_changes(before: Any, after: Any) -> list[ItemChange]:
    """Item changes as deepdiff finds them (order ignored, repetitions counted), unsorted."""
    from deepdiff import DeepDiff  # lazily: see the module's docstring

    # No pairing of "similar" list items (cutoff 0): an item of a list is an element, not a
    # slot, and pairing loses repeated items ([1] -> [2, 2] came back as one change).
    diff = DeepDiff(
        before,
        after,
        ignore_order=True,
        report_repetition=True,
        cutoff_intersection_for_pairs=0,
        view="tree",
    )
    found: list[ItemChange] = []
    for kind, levels in diff.items():
        for level in levels:
            found += _from_level(kind, level)
    return found


def _from_level(kind: str, level: Any) -> list[ItemChange]:
    path = tuple(level.path(output_format="list"))
    if kind in ("iterable_item_added", "dictionary_item_added"):
        return [ItemChange(ADDED, path, None, level.t2)]
    if kind in ("iterable_item_removed", "dictionary_item_removed"):
        return [ItemChange(REMOVED, path, level.t1, None)]
    if kind == "repetition_change":
        # The same item, more or fewer times: the extra copies are the last ones.
        repetition = level.additional.get("repetition", {})
        more = int(repetition.get("new_repeat", 0)) - int(repetition.get("old_repeat", 0))
        if more > 0:
            added = list(repetition.get("new_indexes", []))[-more:]
            return [ItemChange(ADDED, (*path[:-1], index), None, level.t2) for index in added]
        removed = list(repetition.get("old_indexes", []))[more:]
        return [ItemChange(REMOVED, (*path[:-1], index), level.t1, None) for index in removed]
    # values_changed, type_changes. An item of a list is an element, not a slot
    # (order is ignored): a different element is one removed and one added.
    if path and isinstance(path[-1], int):
        return [ItemChange(REMOVED, path, level.t1, None), ItemChange(ADDED, path, None, level.t2)]
    return [ItemChange(CHANGED_ITEM, path, level.t1, level.t2)]


def _order_key(item: ItemChange) -> tuple[int, str]:
    # Stable, readable output: additions first (what is new), then removals, then the rest.
    rank = {ADDED: 0, REMOVED: 1, CHANGED_ITEM: 2}.get(item.change, 3)
    return rank, json.dumps(item.path, default=str)


def _order_changed(before: list[Any], after: list[Any], found: list[ItemChange]) -> bool:
    """Whether the items both lists share come in a different order."""
    top_level = [item for item in found if len(item.path) == 1]
    removed = Counter(_key(item.before) for item in top_level if item.change == REMOVED)
    added = Counter(_key(item.after) for item in top_level if item.change == ADDED)
    return _without(before, removed) != _without(after, added)


def _without(values: list[Any], dropped: Counter[tuple[str, Any]]) -> list[tuple[str, Any]]:
    left = Counter(dropped)
    kept: list[tuple[str, Any]] = []
    for value in values:
        key = _key(value)
        if left[key] > 0:
            left[key] -= 1
        else:
            kept.append(key)
    return kept


def _key(value: Any) -> tuple[str, Any]:
    """A hashable identity of a JSON value: 1, 1.0 and True stay three different items."""
    if value is None or isinstance(value, (str, int, float)):
        return type(value).__name__, value
    return "json", json.dumps(value, sort_keys=True, default=str)
