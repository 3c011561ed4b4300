"""Nested differences inside one field's value (a list of numbers, an object), item by item.

deepdiff does the comparison. It is imported only when a list or an object
really differs, so a plan with nothing changed (the common run in CI) never
pays for importing it.
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
    from deepdiff import DeepDiff  # lazily: see the module's docstring

    diff = DeepDiff(before, after, ignore_order=True, report_repetition=True, view="tree")
    found: list[ItemChange] = []
    for kind, levels in diff.items():
        for level in levels:
            found += _from_level(kind, level)
    found.sort(key=_order_key)
    if isinstance(before, list) and _order_changed(before, after, found):
        found.insert(0, ItemChange(ORDER, ()))
    return tuple(found)


def _from_level(kind: str, level: Any) -> list[ItemChange]:
    path = tuple(level.path(output_format="list"))
    if kind in ("iterable_item_added", "dictionary_item_added"):
        return [ItemChange(ADDED, path, None, level.t2)]
    if kind in ("iterable_item_removed", "dictionary_item_removed"):
        return [ItemChange(REMOVED, path, level.t1, None)]
    if kind == "repetition_change":
        repetition = level.additional.get("repetition", {})
        more = int(repetition.get("new_repeat", 0)) - int(repetition.get("old_repeat", 0))
        change = ADDED if more > 0 else REMOVED
        before, after = (None, level.t2) if more > 0 else (level.t1, None)
        return [ItemChange(change, path, before, after)] * abs(more)
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


def _without(values: list[Any], dropped: Counter[str]) -> list[str]:
    left = Counter(dropped)
    kept: list[str] = []
    for value in values:
        key = _key(value)
        if left[key] > 0:
            left[key] -= 1
        else:
            kept.append(key)
    return kept


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
