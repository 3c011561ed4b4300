"""Renderings of a plan and of apply results; computing stays in plan.py."""

from __future__ import annotations

import json
from typing import Any

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
    Change,
    FieldChange,
    Plan,
)
from trunksync.results import CREATED, DEACTIVATED, FAILED, Result

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
# Actions that only show up in the summary when they occur (they need the remote list).
OPTIONAL_COUNTS = (
    (RECREATE, "to recreate"),
    (REPLACE, "to replace"),
    (ADOPTED, "to adopt"),
    (CONFLICT, "in conflict (not created)"),
    (PRUNE, "to deactivate (prune)"),
    (RETIRE, "replaced to deactivate"),
)


def plan_text(plan: Plan) -> str:
    """Terraform-like text: one block per change, then a summary line."""
    blocks = [_change_text(change) for change in plan.changes]
    return "\n".join([*blocks, summary_line(plan)]) + "\n"


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


def _change_text(change: Change) -> str:
    head = f'  {SYMBOLS[change.action]} {change.action} "{change.name}"'
    if change.trunk_type:
        head += f" ({change.trunk_type})"
    if change.trunk_id:
        head += f" {change.trunk_id}"
    lines = [head]
    if change.note:
        lines.append(f"      # {change.note}")
    if change.action == ORPHAN:
        lines.append("      # in the state, not in the file: left alone")
    width = max((len(field.field) for field in change.fields), default=0)
    lines += [_field_text(change.action, field, width) for field in change.fields]
    return "\n".join(lines) + ("\n" if change.action != NOOP else "")


def _field_text(action: str, field: FieldChange, width: int) -> str:
    name = field.field.ljust(width)
    if action in (CREATE, RECREATE):
        return f"      {name} = {_value(field.after, field.sensitive)}"
    before, after = _value(field.before, field.sensitive), _value(field.after, field.sensitive)
    return f"    ~ {name} : {before} -> {after}"


def _value(value: Any, sensitive: bool) -> str:
    if value is None:
        return "(absent)"
    if sensitive:
        return "(sensitive)"
    return json.dumps(value, ensure_ascii=False)


def plan_json(plan: Plan) -> dict[str, Any]:
    """The machine-readable plan (documented in the README; fields only grow)."""
    return {
        "format_version": JSON_FORMAT_VERSION,
        "changes": [_change_json(change) for change in plan.changes],
        "summary": plan.summary(),
    }


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "name": change.name,
        "action": change.action,
        "trunk_type": change.trunk_type,
        "trunk_id": change.trunk_id,
        "note": change.note,
        "fields": [
            {"field": f.field, "before": f.before, "after": f.after, "sensitive": f.sensitive}
            for f in change.fields
        ],
    }


def result_line(result: Result) -> str:
    if result.status == CREATED:
        suffix = f" ({result.message})" if result.message else ""
        return f'  + created "{result.name}" {result.trunk_id}{suffix}'
    if result.status == DEACTIVATED:
        return f'  - deactivated "{result.name}" {result.trunk_id}'
    if result.status == FAILED:
        return f'  x failed "{result.name}": {result.message}'
    return f'  ? unknown "{result.name}": {result.message}'


def results_summary(results: list[Result]) -> dict[str, int]:
    counts = {CREATED: 0, DEACTIVATED: 0, FAILED: 0, "unknown": 0}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
