"""Every renderer, registered by format, through one table of every action.

The same table drives text, JSON, markdown and the step summary: each must show
each change's name, action, id, note and every field's values (before and after
where both exist, the items of a nested difference), and must warn about what
apply leaves alone. Then unit tests of the pieces they share.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

from trunksync import render, renderers
from trunksync.diffs import ADDED, ORDER, REMOVED, ItemChange
from trunksync.errors import TrunksyncError
from trunksync.plan import (
    ACTIONS,
    ADOPTED,
    APPLIED,
    CHANGED,
    CONFLICT,
    CREATE,
    NOOP,
    ORPHAN,
    PRUNE,
    RECREATE,
    REPLACE,
    RETIRE,
    SECRETS_UNCHECKED,
    SENSITIVE,
    UNKNOWN_SECRET,
    Change,
    FieldChange,
    Plan,
)
from trunksync.render_markdown import _bounded_summary, escape
from trunksync.results import Result

NUMBERS_BEFORE = ["+15550100000", "+15550100001"]
NUMBERS_AFTER = ["+15550100001", "+15550100002"]


class Case(NamedTuple):
    change: Change
    shows: tuple[str, ...]  # value texts every rendering of this change holds
    hides: tuple[str, ...] = ()  # what people's renderings must not repeat
    warned: bool = False


def case(
    name: str,
    action: str,
    trunk_id: str | None,
    fields: tuple[FieldChange, ...] = (),
    note: str | None = None,
    shows: tuple[str, ...] = (),
    hides: tuple[str, ...] = (),
    trunk_type: str = "exotel",
) -> Case:
    change = Change(name, action, trunk_type, trunk_id, fields, None, note)
    return Case(change, shows, hides, action in (CHANGED, CONFLICT, ORPHAN))


CASES = [
    case(
        "New one",
        CREATE,
        None,
        (
            FieldChange("exotel_number", None, "+918044319240"),
            FieldChange("password", None, SENSITIVE, True),
        ),
        shows=('"+918044319240"', SENSITIVE),
    ),
    case(
        "Gone one",
        RECREATE,
        "ST_gone",
        (FieldChange("sip_port", None, 5070),),
        "ST_gone was deactivated outside trunksync",
        shows=("5070",),
    ),
    case(
        "Swapped",
        REPLACE,
        "ST_swap",
        (FieldChange("sip_port", 5060, 5070), FieldChange("password", SENSITIVE, SENSITIVE, True)),
        "a new trunk is created, then ST_swap is deactivated",
        shows=("5060", "5070", SENSITIVE),
    ),
    case("Found", ADOPTED, "ST_found", note="the create did succeed: apply records this id"),
    case(
        "Edited",
        CHANGED,
        "ST_edit",
        (
            FieldChange(
                "numbers",
                NUMBERS_BEFORE,
                NUMBERS_AFTER,
                items=(
                    ItemChange(ADDED, (1,), None, "+15550100002"),
                    ItemChange(REMOVED, (0,), "+15550100000", None),
                ),
            ),
        ),
        "the API cannot update a trunk: not applied",
        shows=('"+15550100002"', '"+15550100000"'),
        hides=('"+15550100001"',),  # the unchanged item is not repeated
        trunk_type="twilio",
    ),
    case(
        "Reordered",
        CHANGED,
        "ST_order",
        (
            FieldChange(
                "numbers", NUMBERS_BEFORE, NUMBERS_BEFORE[::-1], items=(ItemChange(ORDER, ()),)
            ),
        ),
        shows=(),
        hides=('"+15550100000"',),
        trunk_type="twilio",
    ),
    case("Taken", CONFLICT, "ST_theirs", note="an active trunk named 'Taken' already exists"),
    case("Pruned", PRUNE, "ST_prune", note="already deactivated on the platform"),
    case("Retired", RETIRE, "ST_retired", note="replaced earlier", trunk_type=""),
    case("Left", ORPHAN, "ST_left"),
    case("Same", NOOP, "ST_same"),
]
PLAN = Plan(tuple(c.change for c in CASES))
FORMATS = ("text", "json", "markdown", "step-summary")


def test_the_table_covers_every_action_and_every_format() -> None:
    assert {c.change.action for c in CASES} == set(ACTIONS)
    assert set(renderers.formats()) == set(FORMATS)


# How each format shows one change, and its warnings, as text to search.
def text_part(rendered: str, change: Change) -> str:
    lines = rendered.splitlines()
    start = next(i for i, line in enumerate(lines) if f' "{change.name}"' in line)
    end = start + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    return "\n".join(lines[start:end])


def text_warnings(rendered: str) -> str:
    return "\n".join(line for line in rendered.splitlines() if line.startswith("Warning: "))


def json_part(rendered: str, change: Change) -> str:
    data = json.loads(rendered)
    (found,) = [c for c in data["changes"] if c["name"] == change.name]
    return json.dumps(found, ensure_ascii=False)


def json_warnings(rendered: str) -> str:
    return json.dumps(json.loads(rendered)["warnings"], ensure_ascii=False)


def markdown_part(rendered: str, change: Change) -> str:
    name = escape(change.name)
    prefix = (
        f"| {name} |" if change.action == NOOP else f"| {render.SYMBOLS[change.action]} | {name} |"
    )
    (row,) = [line for line in rendered.splitlines() if line.startswith(prefix)]
    return row.replace("\\_", "_")


def markdown_warnings(rendered: str) -> str:
    return "\n".join(line for line in rendered.splitlines() if line.startswith("- "))


VIEWS: dict[str, tuple[Callable[[str, Change], str], Callable[[str], str]]] = {
    "text": (text_part, text_warnings),
    "json": (json_part, json_warnings),
    "markdown": (markdown_part, markdown_warnings),
    "step-summary": (markdown_part, markdown_warnings),
}


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("row", CASES, ids=lambda c: f"{c.change.action}-{c.change.name}")
def test_every_renderer_shows_every_action_the_same_way(output_format: str, row: Case) -> None:
    rendered = renderers.render_plan(PLAN, output_format)
    assert rendered.endswith("\n")
    part_of, warnings_of = VIEWS[output_format]
    part = part_of(rendered, row.change)
    change = row.change
    assert change.name in part
    if change.trunk_id:
        assert change.trunk_id in part
    if change.action != NOOP or output_format in ("text", "json"):
        assert change.action in part
    if change.note:
        assert change.note in part
    for field in change.fields:
        assert field.field in part
    for shown in row.shows:
        assert shown in part, f"{shown} missing from {output_format}: {part}"
    if output_format != "json":  # JSON carries the whole values too, by design
        for hidden in row.hides:
            assert hidden not in part, f"{hidden} repeated in {output_format}: {part}"
    if any(item.change == ORDER for f in change.fields for item in f.items):
        assert ("order changed" if output_format != "json" else '"order"') in part
    assert (change.name in warnings_of(rendered)) == row.warned


@pytest.mark.parametrize("output_format", FORMATS)
def test_replace_shows_before_and_after_in_every_format(output_format: str) -> None:
    swapped = next(c.change for c in CASES if c.change.action == REPLACE)
    part = VIEWS[output_format][0](renderers.render_plan(PLAN, output_format), swapped)
    if output_format == "json":
        assert '"before": 5060, "after": 5070' in part
    else:
        assert "sip_port" in part and "5060 -> 5070" in part


@pytest.mark.parametrize("output_format", FORMATS)
def test_unchecked_secrets_are_said_in_every_format(output_format: str) -> None:
    fields = (FieldChange("password", None, UNKNOWN_SECRET, True),)
    plan = Plan((Change("Fork", CREATE, "twilio", None, fields, None),), secrets_unchecked=True)
    rendered = renderers.render_plan(plan, output_format)
    assert SECRETS_UNCHECKED in rendered
    assert UNKNOWN_SECRET in rendered
    assert (SECRETS_UNCHECKED in renderers.render_plan(Plan(plan.changes), output_format)) is False


@pytest.mark.parametrize("output_format", FORMATS)
def test_many_warnings_of_one_kind_are_named_up_to_a_few_then_counted(output_format: str) -> None:
    # 12 orphans and one conflict: people see 5 orphans by name and a count of the
    # other 7 (each is still a change of the plan); machines get all 12 in --json.
    orphans = [Change(f"Old {n:02d}", ORPHAN, "exotel", f"ST_old{n}", (), None) for n in range(12)]
    conflict = Change("Taken", CONFLICT, "exotel", "ST_taken", (), None)
    rendered = renderers.render_plan(Plan((*orphans, conflict)), output_format)
    if output_format == "json":
        assert len(json.loads(rendered)["warnings"]) == 13
        return
    warnings = rendered[rendered.index("arning") :]
    warnings = warnings.split("\n|")[0]  # markdown: the list, before the table of changes
    assert [n for n in range(12) if f"Old {n:02d}" in warnings] == [0, 1, 2, 3, 4]
    assert "and 7 more orphan entries like these (each is listed with the changes)" in warnings
    assert "Taken" in warnings and "more conflict" not in warnings
    assert all(f"Old {n:02d}" in rendered for n in range(12))  # every one is a change


RESULTS = [
    Result("New one", "created", "ST_n1"),
    Result("Gone one", "failed", None, "400: no"),
    Result("Pruned", "deactivated", "ST_prune"),
]
FINISHED = (
    "Apply finished: 1 created, 1 deactivated, 1 failed, 0 with unknown outcome, 2 not started."
)


@pytest.mark.parametrize("output_format", ["text", "markdown", "step-summary"])
def test_the_apply_finished_line_is_the_same_in_every_format(output_format: str) -> None:
    rendered = renderers.render_apply(PLAN, RESULTS, output_format)
    assert rendered.count(FINISHED) == 1
    assert render.apply_finished_line(PLAN, RESULTS) == FINISHED
    nothing_to_do = Plan(tuple(c for c in PLAN.changes if c.action not in APPLIED))
    assert "Nothing to create." in renderers.render_apply(nothing_to_do, [], output_format)
    # Nothing carried out of a plan that had work (an early Ctrl-C) is not "nothing to do".
    assert "5 not started" in renderers.render_apply(PLAN, [], output_format)


def test_apply_json_counts_what_the_line_says() -> None:
    data = json.loads(renderers.render_apply(PLAN, RESULTS, "json"))
    assert data["summary"] == {
        "created": 1,
        "deactivated": 1,
        "failed": 1,
        "unknown": 0,
        "not_started": 2,
        "conflict": 1,
    }
    assert data["plan"] == render.plan_json(PLAN)
    assert [r["name"] for r in data["results"]] == ["New one", "Gone one", "Pruned"]


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(
        TrunksyncError, match=r"unknown output format 'markdwn'.*did you mean 'markdown'"
    ):
        renderers.render_plan(PLAN, "markdwn")


def test_a_registered_format_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(renderers.RENDERERS, "count", renderers.RENDERERS["text"])
    renderers.register(
        "count", renderers.Renderer(lambda p: f"{len(p.changes)}\n", lambda p, r: "x\n")
    )
    assert renderers.render_plan(PLAN, "count") == f"{len(CASES)}\n"
    assert "count" in renderers.formats()


# --- the shared pieces --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "sensitive", "shown"),
    [
        (None, False, "(absent)"),
        (5070, False, "5070"),
        ("+1555", False, '"+1555"'),
        (["a", "b"], False, '["a", "b"]'),
        ("hunter2", True, SENSITIVE),  # whatever a secret field carries is hidden
        (UNKNOWN_SECRET, True, UNKNOWN_SECRET),
        ("a\x1bb\u202ec\x85", False, '"a\\u001bb\\u202ec\\x85"'),
    ],
)
def test_value_text(value: Any, sensitive: bool, shown: str) -> None:
    assert render.value_text(value, sensitive) == shown


@pytest.mark.parametrize(
    ("item", "shown"),
    [
        (ItemChange(ADDED, (1,), None, "+15550100002"), '+ "+15550100002"'),
        (ItemChange(REMOVED, (0,), "+15550100000", None), '- "+15550100000"'),
        (ItemChange("changed", ("sip", "port"), 5060, 5070), "~ sip.port: 5060 -> 5070"),
        (ItemChange(ADDED, ("extra", 0), None, "x"), '+ extra: "x"'),
        (ItemChange(ORDER, ()), "order changed"),
    ],
)
def test_item_text(item: ItemChange, shown: str) -> None:
    assert render.item_text(item) == shown


def test_nested_difference_in_text_lists_items_under_the_field() -> None:
    edited = next(c.change for c in CASES if c.change.name == "Edited")
    assert render.plan_text(Plan((edited,))).splitlines()[2:5] == [
        "    ~ numbers :",
        '        + "+15550100002"',
        '        - "+15550100000"',
    ]
    reordered = next(c.change for c in CASES if c.change.name == "Reordered")
    assert "    ~ numbers : order changed" in render.plan_text(Plan((reordered,)))


def test_markdown_shows_before_and_after_of_a_replaced_scalar() -> None:
    swapped = next(c.change for c in CASES if c.change.action == REPLACE)
    row = renderers.render_plan(Plan((swapped,)), "markdown")
    assert "sip\\_port: 5060 -> 5070" in row
    assert "password: (sensitive) -> (sensitive)" in row


def test_dumps_escapes_what_json_leaves_raw_and_keeps_values_exact() -> None:
    value = {"name": "a\x7fb\x85c\u202ed\u2028e\x1bf"}
    text = render.dumps(value)
    assert json.loads(text) == value
    for raw in "\x7f\x85\u202e\u2028\x1b":
        assert raw not in text
    assert "\\u007f" in text and "\\u202e" in text


def test_result_lines_escape_what_the_platform_said() -> None:
    line = render.result_line(Result("N\x1b[2J", "failed", None, "bad\nFake: line"))
    assert line == '  x failed "N\\x1b[2J": bad\\x0aFake: line'


def test_a_huge_step_summary_is_cut_at_a_line_and_says_so() -> None:
    markdown = "".join(f"line {index}\n" for index in range(100))
    cut = _bounded_summary(markdown, limit=400)
    assert len(cut.encode()) <= 400
    assert cut.startswith("line 0\n")
    assert cut.rstrip().endswith("more line(s) cut: see the job's log for the whole plan.")
    assert _bounded_summary(markdown, limit=10_000) == markdown


def test_noop_limits_of_markdown_and_step_summary() -> None:
    noops = tuple(
        Change(f"T{index}", NOOP, "exotel", f"ST_{index}", (), None) for index in range(300)
    )
    assert renderers.render_plan(Plan(noops), "markdown").count("| T") == 300
    summary = renderers.render_plan(Plan(noops), "step-summary")
    assert summary.count("| T") == 200 and "… and 100 more." in summary


def test_outputs_text_keeps_one_line_per_trunk() -> None:
    ids = {"A": "ST_a", "B\nFake = ST_x": "ST_b\x1b]0;t\x07"}
    assert render.outputs_text(ids) == "A = ST_a\nB\\x0aFake = ST_x = ST_b\\x1b]0;t\\x07\n"


def test_a_lone_surrogate_is_escaped_so_output_can_be_written() -> None:
    # json.loads("\"\\ud800\"") makes one; writing it raw to UTF-8 fails.
    plan = Plan((Change("a\ud800", CREATE, "exotel", None, (), None),))
    for output_format in FORMATS:
        renderers.render_plan(plan, output_format).encode("utf-8")  # does not raise
    assert '"a\\ud800"' in render.plan_text(plan)
