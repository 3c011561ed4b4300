"""Property-based: whatever names, ids, notes, field values and messages hold, no
renderer lets a control character through, adds a line, or breaks markdown's table.

Each hostile plan is rendered next to a twin with the same shape whose every
string is plain ("x"): the hostile rendering must have the same lines, the same
table cells and the same HTML tags, and no unsafe character (C0 but the newline
between lines, C1, DEL, bidi controls, line separators) anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trunksync import renderers
from trunksync.diffs import ADDED, ORDER, REMOVED, ItemChange
from trunksync.plan import ACTIONS, Change, FieldChange, Plan
from trunksync.render import result_line
from trunksync.results import CREATED, DEACTIVATED, FAILED, UNKNOWN, Result
from trunksync.sanitize import has_unsafe_chars

# The characters attacks use, plus markdown's own syntax, mixed into any text.
NASTY = "\x00\t\n\r\x1b\x07\x7f\x85\x9b\u061c\u200e\u202e\u2066\u2069\u2028\u2029|`<>*_[]\\&#\"'"
hostile = st.text(alphabet=st.one_of(st.sampled_from(NASTY), st.characters()), max_size=16)
FORMATS = ("text", "json", "markdown", "step-summary")
STATUSES = (CREATED, DEACTIVATED, FAILED, UNKNOWN)

Plain = Callable[[str], str]


def same_shape(text: str) -> str:
    """The plain twin of a string: empty stays empty (it changes what is shown)."""
    return "x" if text else ""


class Drawn:
    """Strings and choices drawn once, built into a plan with any string mapping."""

    def __init__(self, data: st.DataObject) -> None:
        self.changes = data.draw(
            st.lists(
                st.tuples(
                    st.sampled_from(ACTIONS),
                    hostile,  # name
                    hostile,  # trunk type
                    st.one_of(st.none(), hostile),  # id
                    st.one_of(st.none(), hostile),  # note
                    st.lists(st.tuples(hostile, hostile, hostile, st.booleans()), max_size=2),
                    st.booleans(),  # nested items
                ),
                min_size=1,
                max_size=4,
            )
        )
        self.results = data.draw(
            st.lists(st.tuples(hostile, st.sampled_from(STATUSES), hostile, hostile), max_size=3)
        )
        self.unchecked = data.draw(st.booleans())

    def plan(self, plain: Plain) -> Plan:
        built = []
        for action, name, trunk_type, trunk_id, note, fields, nested in self.changes:
            field_changes = tuple(
                FieldChange(
                    plain(field),
                    plain(before),
                    [plain(after)],
                    sensitive,
                    _items(plain(before), plain(after)) if nested else (),
                )
                for field, before, after, sensitive in fields
            )
            built.append(
                Change(
                    plain(name),
                    action,
                    plain(trunk_type),
                    None if trunk_id is None else plain(trunk_id),
                    field_changes,
                    None,
                    None if note is None else plain(note),
                )
            )
        return Plan(tuple(built), self.unchecked)

    def result_list(self, plain: Plain) -> list[Result]:
        return [
            Result(plain(name), status, plain(trunk_id), plain(message))
            for name, status, trunk_id, message in self.results
        ]


def _items(before: str, after: str) -> tuple[ItemChange, ...]:
    return (
        ItemChange(ADDED, (0,), None, after),
        ItemChange(REMOVED, (before, 1), before, None),
        ItemChange("changed", (after,), before, after),
        ItemChange(ORDER, ()),
    )


def assert_safe(rendered: str) -> None:
    for line in rendered.split("\n"):
        assert not has_unsafe_chars(line), repr(line)


_ESCAPED = re.compile(r"\\\\|\\[|<>]")


def unescaped(line: str, char: str) -> int:
    """How many times `char` appears in a markdown line as syntax, not as an escaped literal."""
    return _ESCAPED.sub("", line).count(char)


def assert_same_structure(hostile_text: str, plain_text: str, output_format: str) -> None:
    hostile_lines, plain_lines = hostile_text.split("\n"), plain_text.split("\n")
    assert len(hostile_lines) == len(plain_lines)  # nothing injected a line
    if output_format in ("markdown", "step-summary"):
        for mine, twin in zip(hostile_lines, plain_lines, strict=True):
            for char in "|<>":  # table cells and HTML tags are the renderer's only
                assert unescaped(mine, char) == unescaped(twin, char), (mine, twin)


def check_plan_renderers(drawn: Drawn) -> None:
    plan, twin = drawn.plan(lambda text: text), drawn.plan(same_shape)
    for output_format in FORMATS:
        rendered = renderers.render_plan(plan, output_format)
        assert_safe(rendered)
        assert_same_structure(rendered, renderers.render_plan(twin, output_format), output_format)


def check_apply_renderers(drawn: Drawn) -> None:
    plan, twin = drawn.plan(lambda text: text), drawn.plan(same_shape)
    results, twin_results = drawn.result_list(lambda text: text), drawn.result_list(same_shape)
    for output_format in FORMATS:
        rendered = renderers.render_apply(plan, results, output_format)
        assert_safe(rendered)
        twin_rendered = renderers.render_apply(twin, twin_results, output_format)
        assert_same_structure(rendered, twin_rendered, output_format)
    for result, twin_result in zip(results, twin_results, strict=True):
        line = result_line(result)
        assert_safe(line)
        assert "\n" not in line and "\n" not in result_line(twin_result)


def check_json_exact(drawn: Drawn) -> None:
    plan = drawn.plan(lambda text: text)
    document = json.loads(renderers.render_plan(plan, "json"))
    for change, shown in zip(plan.changes, document["changes"], strict=True):
        assert (shown["name"], shown["trunk_id"], shown["note"]) == (
            change.name,
            change.trunk_id,
            change.note,
        )
        assert [field["field"] for field in shown["fields"]] == [f.field for f in change.fields]


# A few dozen examples in every run; the slow run (CI) tries many more.
QUICK = settings(max_examples=30, deadline=None)


@QUICK
@given(st.data())
def test_no_plan_renderer_lets_a_value_through_unescaped(data: st.DataObject) -> None:
    check_plan_renderers(Drawn(data))


@QUICK
@given(st.data())
def test_no_apply_renderer_lets_a_value_through_unescaped(data: st.DataObject) -> None:
    check_apply_renderers(Drawn(data))


@QUICK
@given(st.data())
def test_json_keeps_every_value_exact(data: st.DataObject) -> None:
    check_json_exact(Drawn(data))


@pytest.mark.slow
@settings(max_examples=600, deadline=None)
@given(st.data())
def test_every_renderer_against_many_more_hostile_plans(data: st.DataObject) -> None:
    drawn = Drawn(data)
    check_plan_renderers(drawn)
    check_apply_renderers(drawn)
    check_json_exact(drawn)
