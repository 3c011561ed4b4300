"""Renderers registered by format: one entry per format, each rendering a plan and an apply.

Commands ask for a format by name (`--format`, `--json`, the step summary) and
print what comes back as it is; every renderer returns whole lines, ending in a
newline. Each format renders every action (see plan.ACTIONS) and every warning;
tests/test_render.py drives them all through one table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from trunksync import render, render_markdown
from trunksync.errors import TrunksyncError, did_you_mean
from trunksync.plan import Plan
from trunksync.results import Result

TEXT, JSON, MARKDOWN, STEP_SUMMARY = "text", "json", "markdown", "step-summary"


class Renderer(NamedTuple):
    """How one format shows a plan, and the end of an apply."""

    plan: Callable[[Plan], str]
    apply: Callable[[Plan, Sequence[Result]], str]


def _json_plan(plan: Plan) -> str:
    return render.dumps(render.plan_json(plan)) + "\n"


def _json_apply(plan: Plan, results: Sequence[Result]) -> str:
    return render.dumps(render.apply_json(plan, results)) + "\n"


RENDERERS: dict[str, Renderer] = {
    TEXT: Renderer(render.plan_text, render.apply_text),
    JSON: Renderer(_json_plan, _json_apply),
    MARKDOWN: Renderer(render_markdown.plan_markdown, render_markdown.apply_markdown),
    STEP_SUMMARY: Renderer(render_markdown.plan_step_summary, render_markdown.apply_step_summary),
}


def formats() -> tuple[str, ...]:
    """The registered format names, in registration order."""
    return tuple(RENDERERS)


def register(name: str, renderer: Renderer) -> None:
    """Add (or replace) the renderer of a format."""
    RENDERERS[name] = renderer


def renderer(name: str) -> Renderer:
    try:
        return RENDERERS[name]
    except KeyError:
        known = ", ".join(RENDERERS)
        raise TrunksyncError(
            f"unknown output format {name!r} (known: {known}){did_you_mean(name, RENDERERS)}"
        ) from None


def render_plan(plan: Plan, output_format: str) -> str:
    """The plan in `output_format` (text, json, markdown, step-summary)."""
    return renderer(output_format).plan(plan)


def render_apply(plan: Plan, results: Sequence[Result], output_format: str) -> str:
    """The end of an apply in `output_format`: the "Apply finished" line, counts, results.

    In text, each result's line is printed while apply runs (render.result_line);
    this gives what follows them.
    """
    return renderer(output_format).apply(plan, results)
