"""Markdown renderings of a plan and of apply results, for pull requests and CI.

Suited to a PR comment or GitHub's job summary (GITHUB_STEP_SUMMARY): one
compact table of what changes, a summary line, and the unchanged trunks (there
may be thousands) folded into a <details> block. Secrets are never shown:
fields marked sensitive render as (sensitive). Every text that comes from the
user or the platform (names, ids, values, notes, messages) is escaped: markdown's
own syntax made literal, newlines written as \\n, and anything unprintable made
visible through trunksync.sanitize.printable, so a value cannot break the table,
inject HTML or reach a terminal as a control character.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from trunksync.errors import TrunksyncError
from trunksync.plan import NOOP, ORPHAN, Change, FieldChange, Plan, PlanWarning
from trunksync.render import (
    NEW_FIELDS,
    ORPHAN_REMARK,
    SYMBOLS,
    apply_finished_line,
    consolidated,
    item_text,
    more_warnings_text,
    summary_line,
    value_text,
)
from trunksync.results import CREATED, DEACTIVATED, FAILED, UNKNOWN, Result
from trunksync.sanitize import printable

NOOP_LIMIT = 1000
# GitHub shows at most 1 MiB of a step's summary; stay well below it.
STEP_SUMMARY_LIMIT = 512 * 1024
STEP_SUMMARY_NOOP_LIMIT = 200
RESULT_SYMBOLS = {CREATED: "+", DEACTIVATED: "-", FAILED: "x", UNKNOWN: "?"}
# Markdown punctuation that could start emphasis, code, links, HTML or a table cell.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")


def escape(text: str) -> str:
    """`text` as literal Markdown inside a table cell, on one line, nothing unprintable."""
    escaped = _SPECIAL.sub(r"\\\1", text)
    escaped = escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")
    return printable(escaped)


def plan_markdown(plan: Plan, noop_limit: int = NOOP_LIMIT) -> str:
    """A heading, the summary line, the warnings, a table of the changes, the unchanged folded."""
    parts = ["### trunksync plan", "", escape(summary_line(plan)), *_warnings(plan.warnings())]
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


def _warnings(warnings: Sequence[PlanWarning]) -> list[str]:
    """The entries that need a person although apply leaves them alone, as a list."""
    if not warnings:
        return []
    lines = ["", "**Warnings** (apply leaves these alone; each needs a person):", ""]
    named, more = consolidated(warnings)
    for warning in named:
        if warning.name is None:
            lines.append(f"- {escape(warning.message)}")
        else:
            action = escape(warning.action or "")
            lines.append(f"- **{escape(warning.name)}** ({action}): {escape(warning.message)}")
    lines += [f"- {escape(more_warnings_text(action, count))}" for action, count in more.items()]
    return lines


def _change_row(change: Change) -> str:
    details = [_field(change.action, field) for field in change.fields]
    if change.action == ORPHAN:
        details.append(ORPHAN_REMARK)
    if change.note:
        details.append(f"*{escape(change.note)}*")
    return _row(
        [
            SYMBOLS.get(change.action, "?"),
            escape(change.name),
            escape(change.action),
            escape(change.trunk_type),
            escape(change.trunk_id or ""),
            "<br>".join(details),
        ]
    )


def _field(action: str, field: FieldChange) -> str:
    name = escape(field.field)
    if action in NEW_FIELDS:  # create, recreate: every field is new
        return f"{name} = {escape(value_text(field.after, field.sensitive))}"
    if field.items and not field.sensitive:
        return f"{name}: " + ", ".join(escape(item_text(item)) for item in field.items)
    before = value_text(field.before, field.sensitive)
    after = value_text(field.after, field.sensitive)
    return f"{name}: {escape(before)} -> {escape(after)}"


def _unchanged(noops: list[Change], limit: int) -> list[str]:
    lines = [f"<details><summary>{len(noops)} unchanged</summary>", ""]
    lines += _table(["name", "type", "trunk id"])
    lines += [
        _row([escape(change.name), escape(change.trunk_type), escape(change.trunk_id or "")])
        for change in noops[:limit]
    ]
    if len(noops) > limit:
        lines += ["", f"… and {len(noops) - limit} more."]
    return [*lines, "", "</details>"]


def apply_markdown(plan: Plan, results: Sequence[Result]) -> str:
    """The outcome of an apply: a summary line and one row per create, in plan order."""
    parts = ["### trunksync apply", "", apply_finished_line(plan, results)]
    parts += ["", escape(summary_line(plan)), *_warnings(plan.warnings())]
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
            escape(result.status),
            escape(result.trunk_id or ""),
            escape(result.message or ""),
        ]
    )


def plan_step_summary(plan: Plan) -> str:
    """The plan for GITHUB_STEP_SUMMARY: fewer unchanged rows, and bounded in size."""
    return _bounded_summary(plan_markdown(plan, STEP_SUMMARY_NOOP_LIMIT))


def apply_step_summary(plan: Plan, results: Sequence[Result]) -> str:
    return _bounded_summary(apply_markdown(plan, results))


def _bounded_summary(markdown: str, limit: int = STEP_SUMMARY_LIMIT) -> str:
    """Cut at a line boundary so GitHub shows the summary instead of refusing it."""
    if len(markdown.encode()) <= limit:
        return markdown
    kept: list[str] = []
    size = 0
    lines = markdown.splitlines(keepends=True)
    for line in lines:
        size += len(line.encode())
        if size > limit - 200:  # room for the closing remark
            break
        kept.append(line)
    left = len(lines) - len(kept)
    return "".join(kept) + f"\n… {left} more line(s) cut: see the job's log for the whole plan.\n"


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
