"""Markdown renderings of a plan and of apply results, for pull requests and CI.

Suited to a PR comment or GitHub's job summary (GITHUB_STEP_SUMMARY): one
compact table of what changes, a summary line, and the unchanged trunks (there
may be thousands) folded into a <details> block. Secrets are never shown:
fields marked sensitive render as (sensitive). Every text that comes from the
user (names, values, messages) is escaped, so a name cannot break the table or
inject HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from trunksync.errors import TrunksyncError
from trunksync.plan import APPLIED, NOOP, ORPHAN, Change, FieldChange, Plan
from trunksync.render import SYMBOLS, _value, results_summary, summary_line
from trunksync.results import CREATED, DEACTIVATED, FAILED, UNKNOWN, Result

NOOP_LIMIT = 1000
RESULT_SYMBOLS = {CREATED: "+", DEACTIVATED: "-", FAILED: "x", UNKNOWN: "?"}
# Markdown punctuation that could start emphasis, code, links, HTML or a table cell.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")


def escape(text: str) -> str:
    """`text` as literal Markdown inside a table cell, on one line."""
    escaped = _SPECIAL.sub(r"\\\1", text)
    return escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def plan_markdown(plan: Plan, noop_limit: int = NOOP_LIMIT) -> str:
    """A heading, the summary line, a table of the changes and the unchanged folded away."""
    parts = ["### trunksync plan", "", escape(summary_line(plan))]
    changes = [change for change in plan.changes if change.action != NOOP]
    if changes:
        parts += ["", *_table(["", "name", "action", "type", "trunk id", "what differs"])]
        parts += [_change_row(change) for change in changes]
    noops = [change for change in plan.changes if change.action == NOOP]
    if noops:
        parts += ["", *_unchanged(noops, noop_limit)]
    return "\n".join(parts) + "\n"


def _table(headers: Sequence[str]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _change_row(change: Change) -> str:
    details = [_field(change.action, field) for field in change.fields]
    if change.action == ORPHAN:
        details.append("in the state, not in the file: left alone")
    if change.note:
        details.append(f"*{escape(change.note)}*")
    return _row(
        [
            SYMBOLS.get(change.action, "?"),
            escape(change.name),
            change.action,
            change.trunk_type,
            escape(change.trunk_id or ""),
            "<br>".join(details),
        ]
    )


def _field(action: str, field: FieldChange) -> str:
    name = escape(field.field)
    if action in APPLIED:  # create, recreate: every field is new
        return f"{name} = {escape(_value(field.after, field.sensitive))}"
    before = _value(field.before, field.sensitive)
    after = _value(field.after, field.sensitive)
    return f"{name}: {escape(before)} → {escape(after)}"


def _unchanged(noops: list[Change], limit: int) -> list[str]:
    lines = [f"<details><summary>{len(noops)} unchanged</summary>", ""]
    lines += _table(["name", "type", "trunk id"])
    lines += [
        _row([escape(change.name), change.trunk_type, escape(change.trunk_id or "")])
        for change in noops[:limit]
    ]
    if len(noops) > limit:
        lines += ["", f"… and {len(noops) - limit} more."]
    return [*lines, "", "</details>"]


def apply_markdown(plan: Plan, results: Sequence[Result]) -> str:
    """The outcome of an apply: a summary line and one row per create, in plan order."""
    counts = results_summary(list(results))
    not_started = len(plan.creates()) - len(results)
    parts = ["### trunksync apply", ""]
    if results:
        deactivated = f"{counts[DEACTIVATED]} deactivated, " if counts[DEACTIVATED] else ""
        parts.append(
            f"Apply finished: {counts[CREATED]} created, {deactivated}{counts[FAILED]} failed, "
            f"{counts[UNKNOWN]} with unknown outcome, {not_started} not started."
        )
    else:
        parts.append("Nothing to create.")
    parts += ["", escape(summary_line(plan))]
    if results:
        order = {change.name: index for index, change in enumerate(plan.changes)}
        ordered = sorted(results, key=lambda result: order.get(result.name, len(order)))
        parts += ["", *_table(["", "name", "status", "trunk id", "message"])]
        parts += [_result_row(result) for result in ordered]
    return "\n".join(parts) + "\n"


def _result_row(result: Result) -> str:
    return _row(
        [
            RESULT_SYMBOLS.get(result.status, "?"),
            escape(result.name),
            result.status,
            escape(result.trunk_id or ""),
            escape(result.message or ""),
        ]
    )


def append_step_summary(markdown: str, environ: Mapping[str, str]) -> None:
    """Append `markdown` to the file named by GITHUB_STEP_SUMMARY, if that is set."""
    target = environ.get("GITHUB_STEP_SUMMARY", "")
    if not target:
        return
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    try:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as error:
        reason = error.strerror or str(error)
        raise TrunksyncError(
            f"cannot append the summary to GITHUB_STEP_SUMMARY ({target}): {reason}"
        ) from None
