"""Text and JSON renderings of a plan and of apply results; computing stays in plan.py.

Every value shown comes from outside (the file, the state, the platform), so
each passes through trunksync.sanitize.printable before it reaches a terminal
or a log: one value is one line, and no escape sequence is ever interpreted.
JSON keeps values exact but escapes every unsafe character (\\uXXXX).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from trunksync.diffs import ADDED, ORDER, REMOVED, ItemChange
from trunksync.plan import (
    ADOPTED,
    CHANGED,
    CONFLICT,
    CREATE,
    NOOP,
    ORPHAN,
    PRUNE,
    RECREATE,
    REPLACE,
    RETIRE,
    SENSITIVE,
    UNKNOWN_SECRET,
    Change,
    FieldChange,
    Plan,
    PlanWarning,
)
from trunksync.results import CREATED, DEACTIVATED, FAILED, UNKNOWN, Result
from trunksync.sanitize import BIDI, printable

JSON_FORMAT_VERSION = 1
SYMBOLS = {
    CREATE: "+",
    RECREATE: "+",
    REPLACE: "-/+",
    PRUNE: "-",
    RETIRE: "-",
    ADOPTED: "=",
    CHANGED: "~",
    CONFLICT: "x",
    ORPHAN: "!",
    NOOP: "=",
}
ITEM_SYMBOLS = {ADDED: "+", REMOVED: "-"}
# Actions whose fields are all new: shown as `field = value`, not `before -> after`.
NEW_FIELDS = (CREATE, RECREATE)
ORDER_CHANGED = "order changed"
_SECRET_MARKERS = frozenset({SENSITIVE, UNKNOWN_SECRET})
ORPHAN_REMARK = "in the state, not in the file: left alone"
# Actions that only show up in the summary when they occur (they need the remote list).
OPTIONAL_COUNTS = (
    (RECREATE, "to recreate"),
    (REPLACE, "to replace"),
    (ADOPTED, "to adopt"),
    (CONFLICT, "in conflict (not created)"),
    (PRUNE, "to deactivate (prune)"),
    (RETIRE, "replaced to deactivate"),
)


# --- pieces every renderer shares ---------------------------------------------------------------


def value_text(value: Any, sensitive: bool = False) -> str:
    """One field value on one line: JSON for data, a marker for absent and secret values."""
    if value is None:
        return "(absent)"
    if sensitive:
        # Only the plan's own markers are shown; anything else a secret field carries is
        # hidden, whatever it is.
        return value if isinstance(value, str) and value in _SECRET_MARKERS else SENSITIVE
    return printable(json.dumps(value, ensure_ascii=False))


def item_path(path: Sequence[str | int]) -> str:
    """The keys leading to an item; list positions are left out (order is not identity)."""
    return ".".join(printable(str(part)) for part in path if not isinstance(part, int))


def item_text(item: ItemChange) -> str:
    """One nested difference: `+ "+15550100002"`, `- ...`, `~ key: 1 -> 2`, `order changed`."""
    if item.change == ORDER:
        return ORDER_CHANGED
    where = item_path(item.path)
    prefix = f"{where}: " if where else ""
    if item.change in ITEM_SYMBOLS:
        shown = item.after if item.change == ADDED else item.before
        return f"{ITEM_SYMBOLS[item.change]} {prefix}{value_text(shown)}"
    return f"~ {prefix}{value_text(item.before)} -> {value_text(item.after)}"


def summary_line(plan: Plan) -> str:
    counts = plan.summary()
    if not plan.has_changes:
        return f"No changes: {counts[NOOP]} trunk(s) match the state."
    parts = [f"{counts[CREATE]} to create"]
    parts += [f"{counts[action]} {words}" for action, words in OPTIONAL_COUNTS if counts[action]]
    parts += [
        f"{counts[CHANGED]} changed (not applied)",
        f"{counts[ORPHAN]} orphaned (left alone)",
        f"{counts[NOOP]} unchanged",
    ]
    return "Plan: " + ", ".join(parts) + "."


# Per kind, how many warnings are named one by one; the rest are counted in one line,
# as Terraform consolidates repeated warnings. Each of them is also a change shown
# with the plan, and --json lists every one: 10,000 orphans are not 10,000 more lines.
WARNINGS_NAMED = 5


def consolidated(warnings: Sequence[PlanWarning]) -> tuple[list[PlanWarning], dict[str, int]]:
    """The warnings to name (at most WARNINGS_NAMED of each action, in plan order),
    and how many more of each action there are."""
    named: list[PlanWarning] = []
    seen: dict[str, int] = {}
    for warning in warnings:
        action = warning.action
        if action is None or seen.get(action, 0) < WARNINGS_NAMED:
            named.append(warning)
        if action is not None:
            seen[action] = seen.get(action, 0) + 1
    return named, {a: n - WARNINGS_NAMED for a, n in seen.items() if n > WARNINGS_NAMED}


def more_warnings_text(action: str, count: int) -> str:
    return (
        f"and {count} more {printable(action)} entries like these (each is listed with the changes)"
    )


def warning_text(warning: PlanWarning) -> str:
    """A warning as one line of text (without the `Warning: ` prefix)."""
    if warning.name is None:
        return printable(warning.message)
    action = printable(warning.action or "")
    return f'{action} "{printable(warning.name)}": {printable(warning.message)}'


def not_started(plan: Plan, results: Sequence[Result]) -> int:
    """Changes of the plan that apply never sent (an interrupted or failed run)."""
    return max(0, len(plan.creates()) - len(results))


def apply_finished_line(plan: Plan, results: Sequence[Result]) -> str:
    """The one line that closes an apply, for every format that shows one."""
    if not results and not not_started(plan, results):
        return "Nothing to create."
    counts = results_summary(results)
    deactivated = f"{counts[DEACTIVATED]} deactivated, " if counts[DEACTIVATED] else ""
    return (
        f"Apply finished: {counts[CREATED]} created, {deactivated}{counts[FAILED]} failed, "
        f"{counts[UNKNOWN]} with unknown outcome, {not_started(plan, results)} not started."
    )


def results_summary(results: Sequence[Result]) -> dict[str, int]:
    counts = {CREATED: 0, DEACTIVATED: 0, FAILED: 0, UNKNOWN: 0}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


# --- text ---------------------------------------------------------------------------------------


def plan_text(plan: Plan) -> str:
    """Terraform-like text: one block per change, a summary line, then the warnings."""
    blocks = [_change_text(change) for change in plan.changes]
    lines = [*blocks, summary_line(plan)]
    named, more = consolidated(plan.warnings())
    warnings = [f"Warning: {warning_text(warning)}" for warning in named]
    warnings += [f"Warning: {more_warnings_text(action, n)}" for action, n in more.items()]
    if warnings:
        lines += ["", *warnings]
    return "\n".join(lines) + "\n"


def _change_text(change: Change) -> str:
    symbol = SYMBOLS.get(change.action, "?")
    head = f'  {symbol} {printable(change.action)} "{printable(change.name)}"'
    if change.trunk_type:
        head += f" ({printable(change.trunk_type)})"
    if change.trunk_id:
        head += f" {printable(change.trunk_id)}"
    lines = [head]
    if change.note:
        lines.append(f"      # {printable(change.note)}")
    if change.action == ORPHAN:
        lines.append(f"      # {ORPHAN_REMARK}")
    if change.fields:  # most changes of a big plan (orphans, no-ops) have none
        width = max(len(printable(field.field)) for field in change.fields)
        for field in change.fields:
            lines += _field_text(change.action, field, width)
    return "\n".join(lines) + ("\n" if change.action != NOOP else "")


def _field_text(action: str, field: FieldChange, width: int) -> list[str]:
    name = printable(field.field).ljust(width)
    if action in NEW_FIELDS:
        return [f"      {name} = {value_text(field.after, field.sensitive)}"]
    if field.items and not field.sensitive:
        texts = [item_text(item) for item in field.items]
        if len(texts) == 1 and texts[0] == ORDER_CHANGED:
            return [f"    ~ {name} : {ORDER_CHANGED}"]
        return [f"    ~ {name} :", *(f"        {text}" for text in texts)]
    before = value_text(field.before, field.sensitive)
    after = value_text(field.after, field.sensitive)
    return [f"    ~ {name} : {before} -> {after}"]


def result_line(result: Result) -> str:
    name, trunk_id = printable(result.name), printable(result.trunk_id or "")
    message = printable(result.message or "")
    if result.status == CREATED:
        suffix = f" ({message})" if message else ""
        return f'  + created "{name}" {trunk_id}{suffix}'
    if result.status == DEACTIVATED:
        return f'  - deactivated "{name}" {trunk_id}'
    if result.status == FAILED:
        return f'  x failed "{name}": {message}'
    return f'  ? unknown "{name}": {message}'


def outputs_text(ids: Mapping[str, str]) -> str:
    """`trunksync output`: one `name = id` line per trunk, escaped (an id cannot add a line)."""
    return "".join(f"{printable(name)} = {printable(trunk_id)}\n" for name, trunk_id in ids.items())


def apply_text(plan: Plan, results: Sequence[Result]) -> str:
    """What closes an apply in text (each result's line was printed as it finished)."""
    line = apply_finished_line(plan, results)
    return ("\n" if results or not_started(plan, results) else "") + line + "\n"


# --- JSON ---------------------------------------------------------------------------------------


def plan_json(plan: Plan) -> dict[str, Any]:
    """The machine-readable plan (docs/json-format.md; keys only grow)."""
    return {
        "format_version": JSON_FORMAT_VERSION,
        "changes": [_change_json(change) for change in plan.changes],
        "summary": plan.summary(),
        "would_change": plan.would_change,
        "secrets_unchecked": plan.secrets_unchecked,
        "warnings": [warning._asdict() for warning in plan.warnings()],
    }


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "name": change.name,
        "action": change.action,
        "trunk_type": change.trunk_type,
        "trunk_id": change.trunk_id,
        "note": change.note,
        "fields": [_field_json(field) for field in change.fields],
    }


def _field_json(field: FieldChange) -> dict[str, Any]:
    before, after = field.before, field.after
    if field.sensitive:  # only the plan's markers, whatever a field carries
        before = None if before is None else value_text(before, True)
        after = None if after is None else value_text(after, True)
    return {
        "field": field.field,
        "before": before,
        "after": after,
        "sensitive": field.sensitive,
        "items": [] if field.sensitive else [_item_json(item) for item in field.items],
    }


def _item_json(item: ItemChange) -> dict[str, Any]:
    return {
        "change": item.change,
        "path": list(item.path),
        "before": item.before,
        "after": item.after,
    }


def apply_json(plan: Plan, results: Sequence[Result]) -> dict[str, Any]:
    """The machine-readable outcome of an apply (docs/json-format.md)."""
    conflicts = plan.summary()[CONFLICT]
    return {
        "format_version": JSON_FORMAT_VERSION,
        "plan": plan_json(plan),
        "results": [result._asdict() for result in results],
        "summary": {
            **results_summary(results),
            "not_started": not_started(plan, results),
            "conflict": conflicts,
        },
    }


# Characters json.dumps(ensure_ascii=False) leaves raw that a terminal or log may act on
# (it escapes C0 itself): DEL, C1, bidi controls, line and paragraph separators, and lone
# surrogates (no UTF-8 stream can write one: printing it would fail).
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff" + "".join(sorted(BIDI)) + "]")


def dumps(data: Any) -> str:
    """Indented JSON, readable UTF-8, with every unsafe character escaped as \\uXXXX.

    These characters can only occur inside strings, where the escape keeps the
    value exact: json.loads gives back what was dumped.
    """
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _RAW_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
